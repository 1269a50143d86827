#!/usr/bin/env bash
# Scores the audio quality table with wideband PESQ (ITU-T P.862.2) and regenerates
# docs/quality.md with a PESQ column.
#
#   1. a Python venv under target/quality-venv with the PyPI `pesq`, numpy and scipy packages;
#   2. `jitter-report --audio-only --wav-dir` writes the reference and every decoded signal;
#   3. scripts/quality_score.py scores them (target/quality-wavs/pesq.tsv);
#   4. `jitter-report --pesq` runs the whole report and writes docs/quality.md with the scores.
#
# Built with the benches `deep-plc` feature: the loss profiles also run with libopus deep PLC
# (rows "<profile> deep-PLC"); libopus is then compiled with its DNN (about a minute more).
#
# Options are passed to both jitter-report runs (e.g. --audio-seconds 16). Release build: the
# report takes a few minutes on two cores. Set NO_WRITE=1 to print instead of writing the doc.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/quality-venv
wavs=target/quality-wavs
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import pesq, scipy' 2>/dev/null; then
  echo "creating $venv (pip install pesq numpy scipy)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pesq numpy scipy
fi
rm -rf "$wavs"
echo "decoding the quality signals into $wavs" >&2
cargo run --quiet --release -p benches --features deep-plc --bin jitter-report -- --audio-only --wav-dir "$wavs" "$@" >/dev/null
echo "scoring with wideband PESQ" >&2
"$venv/bin/python" scripts/quality_score.py "$wavs" >"$wavs/pesq.tsv"
write=()
[[ -n "${NO_WRITE:-}" ]] && write=(--no-write)
cargo run --quiet --release -p benches --features deep-plc --bin jitter-report -- --pesq "$wavs/pesq.tsv" "${write[@]}" "$@"
