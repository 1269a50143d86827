#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
# Installs what it needs (system packages, pinned cargo-audit), then: format, lints, advisory
# check, the web client's unit tests (Node), sans-IO check, every test of the workspace, and the
# web page's calls in Chromium against the built binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

./scripts/install-system-deps.sh
./scripts/install-cargo-audit.sh
for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^${component}" || rustup component add "${component}"
done

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo audit"
./scripts/audit.sh

echo "== protocol.md checked by an independent implementation (libsodium via Python)"
python3 scripts/interop/libsodium_check.py docs/protocol.md

echo "== web client (web/): type check, bundle freshness, unit tests"
have_node=false
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
  && node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  have_node=true
fi
if $have_node; then
  # The interop tests drive the real call-signaling (loopback) with the TypeScript client.
  cargo build -q -p signaling --bin call-signaling
  target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
  node_options="${NODE_OPTIONS:-}"
  node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' || node_options="$node_options --experimental-websocket"
  (cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent check \
    && CALL_SIGNALING_BIN="$target_dir/debug/call-signaling" NODE_OPTIONS="$node_options" NO_COLOR=1 npm test --silent)
else
  echo "web client tests skipped: Node >= 20 with npm not found (the served bundle web/dist is committed, so the server still builds)"
fi

echo "== sans-IO check"
./scripts/check-sans-io.sh

echo "== tests"
cargo test --workspace

echo "== browser tests (web/test-browser: the page in Chromium against call and call-signaling)"
if $have_node && [ -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ]; then
  cargo build -q -p call-cli --bin call -p signaling --bin call-signaling
  target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
  (cd web && CALL_BIN="$target_dir/debug/call" CALL_SIGNALING_BIN="$target_dir/debug/call-signaling" \
    node --test --test-concurrency=1 --test-reporter=spec test-browser/calls.browser.mjs test-browser/tamper.browser.mjs test-browser/rooms.browser.mjs)
else
  echo "browser tests skipped: $($have_node && echo "no Chromium at ${CHROMIUM_BIN:-/usr/bin/chromium}" || echo "Node >= 20 with npm not found")"
fi
