#!/usr/bin/env bash
# Builds the Worker (crates/worker/build/) with the tools this project installs:
# worker-build and wasm-bindgen-cli from crates.io, wasm-opt and esbuild from npm.
# worker-build would otherwise download them from GitHub, which is not reachable here.
#
# Skips the build when nothing it reads changed since the last successful one: the
# sha256 of every input (sources, manifests, lockfiles, toolchain, this script, the
# tools' versions) is kept in crates/worker/build/.inputs-sha256. wrangler runs this
# script before every `wrangler dev` / `wrangler deploy`, so an unchanged tree costs
# ~0.1 s instead of a cargo + wasm-bindgen + wasm-opt run. FORCE=1 rebuilds anyway.
#
# `build-worker.sh` builds the Worker that `wrangler dev` serves and `wrangler deploy`
# uploads (crates/worker/build); `build-worker.sh selftest` the same Worker with the
# storage self-test (`POST /healthz/storage` and its race routes; feature
# `storage-selftest`) into crates/worker/build-selftest, which tests/selftest-worker
# serves to the conformance suite. It is ~30 KB of the gzipped wasm, and nothing a user
# calls.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export WASM_BINDGEN_BIN=${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}
export WASM_OPT_BIN=${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}
export ESBUILD_BIN=${ESBUILD_BIN:-$root/node_modules/.bin/esbuild}
# Built for size at opt-level "z" (over Cargo.toml's release "s", which the native
# release builds keep), as the Spin components are: 9.5% smaller gzipped (488,931 ->
# 442,363 bytes, 2026-12-03) for a movie import over the stored copy ~17% slower under
# workerd (1,413 -> 1,648 ms, bench_movies, two alternating runs each; into an empty
# table no slower) and no change bench_hotpath could see. The environment's
# CARGO_PROFILE_RELEASE_OPT_LEVEL overrides it, and is part of the inputs' hash.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-z}
case "${1:-}" in
  "") variant=deploy dir=build cargo_args=() ;;
  selftest) variant=selftest dir=build-selftest cargo_args=(--features storage-selftest) ;;
  *)
    echo "usage: $0 [selftest]" >&2
    exit 2
    ;;
esac
out=$root/crates/worker/$dir
stamp=$out/.inputs-sha256

# The Worker's static assets (wrangler.toml `[assets]`: the /docs files), which wrangler
# uploads (or `wrangler dev` serves) beside the Worker; not an input of the wasm.
bash "$root/scripts/docs-assets.sh"

inputs_hash() {
  cd "$root"
  {
    # Every file the build reads, by path and content. Paths relative to the root, in
    # byte order, so the hash does not depend on where the checkout is.
    find Cargo.lock Cargo.toml rust-toolchain.toml package-lock.json \
      scripts/build-worker.sh wit components/*/Cargo.toml components/*/src \
      crates/*/Cargo.toml crates/*/src -type f -print0 \
      | LC_ALL=C sort -z -u | xargs -0 sha256sum
    # ...and what turns them into the Worker.
    printf 'wasm-bindgen %s\n' "$("$WASM_BINDGEN_BIN" --version 2>/dev/null || echo none)"
    printf 'worker-build %s\n' "$(worker-build --version 2>/dev/null || echo none)"
    printf 'RUSTFLAGS=%s NO_MINIFY=%s OPT_LEVEL=%s KEEP_NAMES=%s variant=%s\n' "${RUSTFLAGS:-}" \
      "${NO_MINIFY:-}" "${CARGO_PROFILE_RELEASE_OPT_LEVEL:-}" "${KEEP_NAMES:-0}" "$variant"
  } | sha256sum | cut -d' ' -f1
}

hash=$(inputs_hash)
if [ "${FORCE:-0}" != 1 ] && [ -f "$out/index.js" ] && [ -f "$stamp" ] &&
  [ "$(cat "$stamp")" = "$hash" ]; then
  echo "build-worker: crates/worker/$dir is up to date (inputs sha256 ${hash:0:12})"
  exit 0
fi

# A failed or interrupted build must not leave a stamp that vouches for its output.
rm -f "$stamp"
cd "$root/crates/worker"
worker-build --release --out-dir "$dir" "${cargo_args[@]}"
# A second wasm-opt pass over worker-build's (crates/worker/Cargo.toml sets that
# one to `-Oz --low-memory-unused` too): 422,896 -> 420,526 bytes gzip, ~7 s
# (2026-12-04). worker-build keeps the wasm's function names (wasm-opt --debuginfo) for
# stack traces: 300 KB raw, 75 KB gzip of the 2.3 MB; this pass drops them. Panics
# still log their message and source location; a trace shows function indexes instead
# of names. The features are worker-build's own list, so wasm-opt emits nothing workerd
# cannot load. KEEP_NAMES=1 keeps the names, for a profile by function name
# (scripts/profile-worker.mjs).
names=(--strip-debug --strip-producers)
[ "${KEEP_NAMES:-0}" != 1 ] || names=(--debuginfo)
"$WASM_OPT_BIN" -Oz --low-memory-unused "${names[@]}" \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types \
  --enable-exception-handling \
  "$out/index_bg.wasm" -o "$out/index_bg.wasm"
echo "$hash" >"$stamp"
echo "build-worker: $dir built ($(stat -c %s "$out/index_bg.wasm") bytes, $(gzip -9c "$out/index_bg.wasm" | wc -c) gzip); inputs sha256 ${hash:0:12} saved in ${stamp#"$root"/}"
