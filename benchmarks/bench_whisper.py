"""What the frozen Whisper encoder costs on this CPU: encoding speed, and exact CopyPaste per epoch.

1. Encoding: CPU seconds per minute of audio for blocks 0..L (the layer a model reads; 3 by
   default) and for the whole encoder, one thread, on utterances of a few seconds batched by
   length (features/whisper_states.encode_rows), and on one 30-s window.
2. Exact CopyPaste: one training epoch's batches of a prepared corpus's train split with N-CP,
   where every join's log-mel is encoded whole (augment/reencode.py), against No CP.

Usage (Whisper-base installed: `pip install 'copypaste-ser[whisper]'`):
  python benchmarks/bench_whisper.py --data data/emodb4full --fold loso-emodb-03 --layer 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from copypaste_ser.augment.copypaste import CopyPaste
from copypaste_ser.augment.pipeline import reencoding
from copypaste_ser.data.audio import load_audio
from copypaste_ser.data.manifest import load_corpus
from copypaste_ser.features.batches import Item, TrainBatches
from copypaste_ser.features.cache import extract_features
from copypaste_ser.features.mfcc import whisper_states_features
from copypaste_ser.features.whisper_states import encode_rows, mel_rows, shared_whisper


def cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def encoding(manifest, ids: list[str], layer: int) -> None:
    rows = [mel_rows(load_audio(manifest[i].audio)) for i in ids]
    minutes = sum(len(r) for r in rows) * 0.02 / 60
    encoder = shared_whisper("base")
    for upto in (layer, encoder.dims.blocks):
        secs = cpu_seconds(lambda: encode_rows(rows, upto, encoder=encoder))
        print(f"blocks 0-{upto}: {secs / minutes:.2f} CPU-s per audio minute ({minutes:.1f} min of audio)")
    window = torch.zeros(1, 3000, encoder.dims.n_mels)
    secs = cpu_seconds(lambda: encoder(window, upto=layer))
    print(f"one 30-s window, blocks 0-{layer}: {secs:.2f} CPU-s")


def epoch_cost(data: Path, manifest, protocol, fold: str, layer: int) -> None:
    cfg = whisper_states_features("base", layer)
    ids = protocol.fold(fold).train
    store = extract_features(manifest.subset(ids), cfg, data, progress=False)
    feats = {i: store[i] for i in ids}
    items = [Item(i, manifest.label_index(manifest[i].emotion)) for i in ids]
    neutral = manifest.label_index(manifest.neutral)
    for name, augment in (("No CP", None),
                          ("N-CP (exact)", reencoding(CopyPaste("n-cp", neutral_label=neutral, p=0.8,
                                                                piece_length=200, seed=0), cfg))):
        batches = TrainBatches(items, lambda it: feats[it.utt_id], 32, 200, augment, seed=0, mean_norm=False)
        secs = cpu_seconds(lambda: [b for b in batches.epoch(1)])
        print(f"{name}: {secs:.1f} CPU-s of batches per epoch ({len(items)} items)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--fold", required=True)
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("--utterances", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    manifest, protocol = load_corpus(Path(args.data))
    rng = np.random.default_rng(0)
    sample = [manifest.utterances[i].id for i in rng.choice(len(manifest), args.utterances, replace=False)]
    encoding(manifest, sample, args.layer)
    epoch_cost(Path(args.data), manifest, protocol, args.fold, args.layer)
