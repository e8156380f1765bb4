"""What exact CopyPaste costs the speaker-pretrained model: re-encoding concatenations per epoch.

For ``--init resemblyzer-attention`` the features are mel power + cached Resemblyzer states
(feature kind ``resemblyzer-states``). Items CopyPaste leaves alone use the cache; the
concatenations are run through the frozen LSTM again (augment/reencode.py). This times one
training epoch of a prepared corpus's train split, batch by batch:

  batches      data.TrainBatches: chunking, CopyPaste (+ re-encoding), padding
  head step    forward + backward + AdamW of the attention head on the padded batch

for No CP, plain CopyPaste on cached states (inexact, for comparison) and exact CopyPaste.
``--tune-layers 1`` times the model whose top LSTM layer is fine-tuned (encoder_tune_layers).

Usage (after `copypaste-ser prepare emodb --classes paper4 ... --out data/emodb4full`):
  PYTHONPATH=src python benchmarks/bench_reencode.py --data data/emodb4full --fold loso-emodb-03
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from copypaste_ser.augment.copypaste import CopyPaste
from copypaste_ser.augment.reencode import ReencodeConcatenations
from copypaste_ser.data.manifest import load_corpus
from copypaste_ser.features.batches import Item, TrainBatches
from copypaste_ser.features.cache import extract_features
from copypaste_ser.features.encoders import shared_encoder
from copypaste_ser.features.mfcc import resemblyzer_states_features
from copypaste_ser.models.encoder_head import EncoderAttentionEmotion, EncoderHeadConfig


def time_epoch(items, feats, augment, batch_size: int, model, steps: bool) -> tuple[float, float, int]:
    batches = TrainBatches(items, lambda it: feats[it.utt_id], batch_size, 400, augment, seed=0, mean_norm=False)
    opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=0.01)
    t_batches = t_steps = 0.0
    n = 0
    it = iter(batches.epoch(1))
    while True:
        t0 = time.perf_counter()
        try:
            x, lengths, y = next(it)
        except StopIteration:
            break
        t1 = time.perf_counter()
        if steps:
            loss = torch.nn.functional.cross_entropy(model(x, lengths), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        t_batches += t1 - t0
        t_steps += time.perf_counter() - t1
        n += 1
    return t_batches, t_steps, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--fold", default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tune-layers", type=int, default=0, help="top LSTM layers fine-tuned with the head")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    manifest, protocol = load_corpus(args.data)
    fold = protocol.fold(args.fold)
    cfg = resemblyzer_states_features()
    feats = extract_features(manifest.subset(fold.train), cfg, args.data, progress=False).load_all()
    labels = list(manifest.labels)
    neutral = labels.index(manifest.neutral)
    items = [Item(i, labels.index(manifest[i].emotion)) for i in fold.train]
    model = EncoderAttentionEmotion(EncoderHeadConfig(num_classes=len(labels), tuned_layers=args.tune_layers))
    model.load_tuned_layers(shared_encoder())
    model.fit_input_stats(list(feats.values()))
    print(f"{args.data} fold {fold.name}: {len(items)} training items, batch {args.batch_size}, "
          f"torch threads {args.threads}, top LSTM layers tuned {args.tune_layers}")
    print(f"{'augmentation':34s} {'batches s':>10s} {'head steps s':>13s} {'epoch s':>8s}")
    for name, make in (("No CP (cache only)", lambda: None),
                       ("N-CP on cached states (inexact)", lambda: CopyPaste("n-cp", neutral, seed=0)),
                       ("N-CP re-encoded (exact)", lambda: ReencodeConcatenations(CopyPaste("n-cp", neutral, seed=0)))):
        tb, ts, _ = time_epoch(items, feats, make(), args.batch_size, model, steps=True)
        print(f"{name:34s} {tb:10.2f} {ts:13.2f} {tb + ts:8.2f}")


if __name__ == "__main__":
    main()
