#!/usr/bin/env bash
# Builds the Worker (components/worker/build/) with the tools this project installs:
# worker-build and wasm-bindgen-cli from crates.io, wasm-opt and esbuild from npm.
# worker-build would otherwise download them from GitHub, which is not reachable here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export WASM_BINDGEN_BIN=${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}
export WASM_OPT_BIN=${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}
export ESBUILD_BIN=${ESBUILD_BIN:-$root/node_modules/.bin/esbuild}
cd "$root/components/worker"
exec worker-build --release
