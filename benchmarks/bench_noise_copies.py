"""Time of a noisy training copy computed when drawn (``--noise-copies on-the-fly``).

Mixes the first of the six training copies (noise at 10 dB) into the first --utterances of a
prepared corpus and extracts each model's features from the mix, as a batch does when its
noisy items are not cached. Prints ms per utterance and CPU-seconds per minute of audio.

Usage:
  python benchmarks/bench_noise_copies.py --data data/crema-d --noise-root ~/corpora/musan
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from copypaste_ser.augment.noise import training_copies
from copypaste_ser.data.corpora.musan import noise_split_for
from copypaste_ser.data.manifest import load_corpus
from copypaste_ser.features.cache import OnTheFlyFeatures
from copypaste_ser.training.config import make_config

MODELS = {"resemblyzer-attention": ("cpu", "resemblyzer-attention"), "scratch": ("small", None)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="prepared corpus folder")
    ap.add_argument("--noise-root", type=Path, required=True, help="noise corpus in MUSAN layout")
    ap.add_argument("--utterances", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    manifest, _ = load_corpus(args.data)
    utts = list(manifest)[: args.utterances + 1]
    _, sets = noise_split_for(args.noise_root, args.data)
    for name, (preset, init) in MODELS.items():
        cfg = make_config(preset, data=str(args.data), init=init)
        store = OnTheFlyFeatures(utts, cfg.feature_config, training_copies(sets)[0])
        store[utts[0].id]  # loads the encoder once, outside the timing
        t0 = time.perf_counter()
        frames = sum(store[u.id].shape[0] for u in utts[1:])
        seconds = time.perf_counter() - t0
        print(f"{name:22s} {1000 * seconds / (len(utts) - 1):6.0f} ms/utterance  "
              f"{seconds / (frames / 100) * 60:5.2f} s per audio minute")


if __name__ == "__main__":
    main()
