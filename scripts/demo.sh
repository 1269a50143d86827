#!/usr/bin/env bash
# The main job on embedded defaults: a real call between two `call` peers on this machine,
# through an in-process signaling server and TURN server, for a few seconds, with live stats.
# Extra arguments go to `call demo` (e.g. --relay-only, --duration 10, --audio-out heard.wav).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
./scripts/install-system-deps.sh
cargo run --release --quiet -p call-cli --bin call -- demo "$@"
