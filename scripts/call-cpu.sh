#!/usr/bin/env bash
# CPU seconds per call-second of both ends of a real call between two `call` processes on
# loopback (benches/src/bin/call-cpu.rs). Builds `call` and the tool in release mode, then runs
# it; arguments go to the tool, e.g. `--seconds 20 --runs 3`, `--video`, `--video --size 1280x720`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build --release -p call-cli -p benches --bin call --bin call-cpu
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/call-cpu" --call "$target/release/call" "$@"
