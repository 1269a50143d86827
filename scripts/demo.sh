#!/usr/bin/env bash
# The main job on embedded defaults: a real call between two `call` peers on this machine,
# through an in-process signaling server and TURN server, for a few seconds, with live stats.
# Extra arguments go to `call demo` (e.g. --relay-only, --duration 10, --audio-out heard.wav).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
./scripts/install-system-deps.sh
# The first build compiles webrtc-rs, libopus and openh264: say so instead of sitting silent.
if [ ! -x target/release/call ]; then
  echo "demo: building call in release mode; the first build takes about 5 minutes on 2 cores" >&2
fi
cargo build --release -p call-cli --bin call
exec target/release/call demo "$@"
