#!/usr/bin/env bash
# Fails (exit 1) when a sans-IO module reads a clock or touches sockets or tokio.
#
# Scope: media/src/jitter/, media/src/netsim/, media/src/bwe/, media/src/sync/ and signaling/src/room/, except media/src/netsim/relay.rs (the shell).
# Forbidden outside tests: `Instant::now()`, `SystemTime::now()`, `std::net`, `tokio`.
# Not checked: files named tests.rs or under a tests/ directory, everything from the first
# `#[cfg(test)]` line of a file to its end (test modules go last), and `//` comment lines.
# Prints every offending file:line and exits 1 if there is any; exits 0 otherwise.
#
# Usage: scripts/check-sans-io.sh [repo-root]   (default: the parent of this script's directory)
set -euo pipefail

root="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
dirs=("$root/media/src/jitter" "$root/media/src/netsim" "$root/media/src/bwe" "$root/media/src/sync" "$root/signaling/src/room")
allow=("media/src/netsim/relay.rs")

status=0
for dir in "${dirs[@]}"; do
  [ -d "$dir" ] || continue
  while IFS= read -r -d '' file; do
    rel="${file#"$root"/}"
    skip=0
    for a in "${allow[@]}"; do [ "$rel" = "$a" ] && skip=1; done
    case "$rel" in */tests.rs|*/tests/*) skip=1 ;; esac
    [ "$skip" = 1 ] && continue
    if ! awk -v f="$rel" '
      /^[[:space:]]*#\[cfg\(test\)\]/ { exit bad }
      /^[[:space:]]*\/\// { next }
      /Instant::now\(\)|SystemTime::now\(\)|std::net|(^|[^[:alnum:]_])tokio([^[:alnum:]_]|$)/ {
        printf "%s:%d: not sans-IO: %s\n", f, NR, $0; bad = 1
      }
      END { exit bad }
    ' "$file"; then
      status=1
    fi
  done < <(find "$dir" -type f -name '*.rs' -print0 | sort -z)
done

if [ "$status" -ne 0 ]; then
  echo "check-sans-io: clocks, sockets and tokio belong in the shell (session, relay.rs), not in jitter/, netsim/, bwe/ or sync/ cores; pass time in as \`now: Instant\`." >&2
else
  echo "check-sans-io: ok"
fi
exit "$status"
