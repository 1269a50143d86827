#!/usr/bin/env bash
# Installs the pinned cargo-audit from crates.io if it is not there yet (idempotent).
set -euo pipefail
version="0.22.2"
if cargo audit --version 2>/dev/null | grep -q " ${version}$"; then
  exit 0
fi
echo "installing cargo-audit ${version}" >&2
cargo install cargo-audit --version "${version}" --locked --quiet
