#!/usr/bin/env bash
# RustSec advisory check of Cargo.lock (.cargo/audit.toml says which advisories are ignored and why).
#   1. $CALL_ADVISORY_DB or ../shared/advisory-db when present (CI always has this snapshot): offline.
#   2. otherwise the live advisory database, when crates.io's index and GitHub can be reached.
#   3. otherwise one line saying the check was skipped and why; exit 0 (a plain clone without
#      network can still run the tests).
# In CI (CI=true) the snapshot is required: a missing snapshot fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
db="${CALL_ADVISORY_DB:-../shared/advisory-db}"
if [ -d "$db" ]; then
  exec cargo audit --no-fetch --db "$db"
fi
if [ "${CI:-}" = "true" ]; then
  echo "advisory check: no advisory database at $db (CI needs the snapshot in ../shared/advisory-db)" >&2
  exit 1
fi
if ! cargo audit --version >/dev/null 2>&1; then
  echo "advisory check skipped: cargo-audit is not installed (./scripts/install-cargo-audit.sh installs it)"
  exit 0
fi
fetched="$(mktemp -d)"
trap 'rm -rf "$fetched"' EXIT
if timeout 120 cargo audit --db "$fetched/db" >"$fetched/out" 2>&1; then
  cat "$fetched/out"
  exit 0
fi
if grep -qiE "couldn't fetch|failed to (fetch|clone|prepare)|network|resolve|timed out|could not connect" "$fetched/out" \
   || [ ! -d "$fetched/db/crates" ]; then
  echo "advisory check skipped: no ../shared/advisory-db snapshot and the advisory database could not be fetched ($(grep -m1 -iE 'error' "$fetched/out" | cut -c1-120))"
  exit 0
fi
# The database was fetched and the check itself found something: that is a real failure.
cat "$fetched/out"
exit 1
