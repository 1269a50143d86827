"""Scores the WAVs written by `jitter-report --wav-dir DIR` with wideband PESQ (ITU-T P.862.2).

Usage: quality_score.py DIR  -> prints `name<TAB>MOS-LQO` lines (name = file stem).

Every decoded WAV is compared with DIR/reference.wav. Both are 48 kHz mono; they are resampled
to 16 kHz (polyphase, scipy) and cut into 10 s segments (PESQ is specified for 8-12 s
utterances); the score of a file is the mean over its segments.
"""

import sys
from pathlib import Path

import numpy as np
from pesq import pesq
from scipy.io import wavfile
from scipy.signal import resample_poly

RATE = 16_000
SEGMENT_S = 10


def load_16k(path: Path) -> np.ndarray:
    rate, pcm = wavfile.read(path)
    if rate != 48_000 or pcm.ndim != 1:
        raise SystemExit(f"{path}: expected 48 kHz mono, got {rate} Hz, shape {pcm.shape}")
    return resample_poly(pcm.astype(np.float64), 1, 3)


def score(reference: np.ndarray, degraded: np.ndarray) -> float:
    n = min(len(reference), len(degraded))
    seg = SEGMENT_S * RATE
    scores = [
        pesq(RATE, reference[i : i + seg], degraded[i : i + seg], "wb")
        for i in range(0, n - seg + 1, seg)
    ]
    if not scores:
        raise SystemExit(f"signal shorter than one {SEGMENT_S} s segment")
    return float(np.mean(scores))


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    wav_dir = Path(sys.argv[1])
    reference = load_16k(wav_dir / "reference.wav")
    print("# wideband PESQ (P.862.2) MOS-LQO against reference.wav")
    for path in sorted(wav_dir.glob("*.wav")):
        if path.name == "reference.wav":
            continue
        print(f"{path.stem}\t{score(reference, load_16k(path)):.3f}", flush=True)


if __name__ == "__main__":
    main()
