#!/usr/bin/env bash
# Runs one fuzz target with libFuzzer: scripts/fuzz.sh TARGET [SECONDS] (default 60).
# Needs the nightly toolchain; installs cargo-fuzz when missing. Without nightly it says what
# it skipped and exits 0 (the corpora still run on stable in ./scripts/test.sh).
# New inputs the run finds go to target/fuzz-corpus/TARGET (not into git: minimise them into
# fuzz/corpus/TARGET with `cargo +nightly fuzz cmin` first); crashes to fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:?usage: scripts/fuzz.sh TARGET [SECONDS]   (targets: ls fuzz/fuzz_targets)}"
seconds="${2:-60}"
if [[ ! -f "fuzz/fuzz_targets/${target}.rs" ]]; then
  echo "no fuzz target ${target}; the targets are: $(ls fuzz/fuzz_targets | sed 's/\.rs$//' | tr '\n' ' ')" >&2
  exit 2
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: skipped ${target}: no nightly toolchain (rustup toolchain install nightly); the corpus replay runs in ./scripts/test.sh"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
work="target/fuzz-corpus/${target}"
mkdir -p "${work}" "fuzz/artifacts/${target}"
# Safe Rust only in the fuzzed code, so no sanitizer (twice the speed); overflow checks and
# debug assertions on. See docs/decisions.md, "Fuzzing".
exec nice cargo +nightly fuzz run "${target}" \
  -a -s none --codegen-units 16 --features libfuzzer --target-dir target \
  "${work}" "fuzz/corpus/${target}" -- \
  -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
