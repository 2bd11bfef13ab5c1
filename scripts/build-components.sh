#!/usr/bin/env bash
# Builds the Spin components as deployed: `cargo rustc --release --target wasm32-wasip2`,
# then each component shrunk by scripts/shrink-component.py (binaryen's wasm-opt -Oz over
# its core module, debugging names dropped) into build/components/NAME.wasm, which is
# what spin.toml's `source`s name. With no arguments, every component; else the named
# ones (spin.toml's per-component `spin build` commands).
#
# wasm-opt takes 10-30 s a component, so a component whose cargo output is unchanged
# since its last shrink (sha256 kept beside it) is left alone, and two run at a time.
# The /docs and OpenAPI static files (spin.toml `files`) are refreshed first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
wasm_opt=${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}
all=(hello health shows scraper streams movies docs dynamodb dynamodb-ttl graph)
components=("$@")
[ ${#components[@]} -gt 0 ] || components=("${all[@]}")

if [ ! -x "$wasm_opt" ]; then
  echo "build-components: $wasm_opt is missing: run \`npm ci\` (scripts/setup.sh does)" >&2
  exit 1
fi

bash scripts/docs-assets.sh
# Built for size: opt-level "z" over Cargo.toml's release "s" (which the native release
# builds, the benchmarks, keep); with wasm-opt -Os after it, 3.3-6.2% smaller than "s"
# (2026-12-03), and no slower on spin-host.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-z}
# A component is the cargo package of its name, in components/. Each is linked as a
# `cdylib` by its own
# `cargo rustc --crate-type cdylib`: the packages are plain libraries (the Worker and
# the native host link them), and cargo passes no `-C lto` to a crate built as `cdylib`
# and `rlib` together, so such a wasm is linked without the release profile's LTO (hello
# 378,978 bytes that way, 317,966 with it; 2026-12-03). One cargo run per component,
# since `cargo rustc` takes one package; they share every dependency's build.
# Each component's wasm-opt starts as soon as its link is done, beside the next link:
# both are mostly one thread.
# The Spin app keeps health's storage self-test (`POST /healthz/storage` and its race
# routes), through which the conformance suite runs the backend suite and the
# cross-request races on the Spin key-value store.
features() { if [ "$1" = health ]; then echo storage-selftest; fi; }

out=build/components
mkdir -p "$out"
shrink() { # component
  local built shrunk=$out/$1.wasm
  built=target/wasm32-wasip2/release/$(echo "$1" | tr - _).wasm
  local hash
  hash=$({ sha256sum <"$built"; sha256sum <scripts/shrink-component.py; "$wasm_opt" --version; } | sha256sum | cut -d' ' -f1)
  if [ -f "$shrunk" ] && [ "$(cat "$shrunk.inputs-sha256" 2>/dev/null)" = "$hash" ]; then
    return 0
  fi
  rm -f "$shrunk.inputs-sha256"
  python3 scripts/shrink-component.py "$wasm_opt" "$built" "$shrunk"
  echo "$hash" >"$shrunk.inputs-sha256"
  echo "build-components: $1.wasm $(stat -c %s "$built") -> $(stat -c %s "$shrunk") bytes"
}

running=0
for component in "${components[@]}"; do
  cargo rustc --release --target wasm32-wasip2 --lib --crate-type cdylib -p "$component" \
    --features "$(features "$component")"
  if [ "$running" -ge 2 ]; then
    wait -n
    running=$((running - 1))
  fi
  shrink "$component" &
  running=$((running + 1))
done
# `wait` alone would hide a failed shrink; each job's own status counts.
while [ "$running" -gt 0 ]; do
  wait -n
  running=$((running - 1))
done
