#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ (or the named ones) in turn, each for
# FUZZ_SECONDS (default 600) or, when FUZZ_RUNS is set, for exactly that many
# executions; prints libFuzzer's final stats per target. Installs what it needs: the
# nightly toolchain pinned in fuzz/rust-toolchain.toml and cargo-fuzz. Not part of
# `make test`, which replays the kept inputs (tests/hostile) instead.
#
# The corpus each run grows is fuzz/corpus/<target>/ (commit what is worth keeping, after
# `cargo fuzz cmin <target>`); an input that fails a target is written to
# fuzz/regressions/<target>/, where `make test` replays it until the bug is fixed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
rustup toolchain list | grep -q "^$toolchain" || rustup toolchain install "$toolchain" --profile minimal
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz 0.13.2" ]; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(expression expression_differential dynamodb_request sigv4 http_request stored_bytes)
if [ -n "${FUZZ_RUNS:-}" ]; then limit=(-runs="$FUZZ_RUNS"); else limit=(-max_total_time="${FUZZ_SECONDS:-600}"); fi
# The code under test has no `unsafe` (the workspace denies it), so no sanitizer: twice
# the executions per second, the same coverage feedback.
cargo fuzz build -O -s none
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "regressions/$target"
  echo "== $target"
  cargo fuzz run -O -s none "$target" "corpus/$target" -- "${limit[@]}" \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="regressions/$target/"
done
