"""Time CopyPaste adds per batch vs. one forward+backward training step.

Batches of random (T, 23) float32 feature matrices, T uniform in [min-frames, max-frames].
Measured per batch (median over --batches):
  copypaste   CopyPaste.__call__ on the list of matrices (p=1, so every batch is augmented)
  pad         data.pad_batch: mean-normalise each item and pad into one (B, T_max, 23) tensor
  model step  forward + cross-entropy + backward + Adam step on the padded batch

Usage:
  PYTHONPATH=src python benchmarks/bench_copypaste.py --batches 5 --device cpu --preset cpu

The model is copypaste_ser.models.build_model (preset --preset); padding is the
training pipeline's own collate (data.pad_batch: mean normalisation + zero padding).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

from copypaste_ser.augment.copypaste import CopyPaste
from copypaste_ser.features.batches import pad_batch
from copypaste_ser.models import PRESETS, ModelConfig, build_model


def get_model(feat_dim: int, n_classes: int, preset: str) -> tuple[nn.Module, str]:
    config = ModelConfig(**{**PRESETS[preset], "feat_dim": feat_dim, "num_classes": n_classes})
    return build_model(config), f"EmotionResNet, preset {preset!r}"


def timed(fn, sync) -> tuple[float, object]:
    sync()
    t0 = time.perf_counter()
    res = fn()
    sync()
    return time.perf_counter() - t0, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=5, help="timed batches (after one warm-up)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--min-frames", type=int, default=150)
    ap.add_argument("--max-frames", type=int, default=600)
    ap.add_argument("--feat-dim", type=int, default=23)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--piece-length", type=int, default=400, help="frames per part (4 s at 10 ms)")
    ap.add_argument("--schemes", default="n-cp,se-cp", help="comma-separated CopyPaste schemes")
    ap.add_argument("--mode", default="replace", choices=["replace", "add"])
    ap.add_argument("--preset", default="paper", help="model preset of copypaste_ser.models (paper, cpu, tiny)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)

    def make_batch():
        lengths = rng.integers(args.min_frames, args.max_frames + 1, size=args.batch_size)
        feats = [rng.standard_normal((t, args.feat_dim), dtype=np.float32) for t in lengths]
        labels = rng.integers(0, args.classes, size=args.batch_size).tolist()
        return feats, labels

    model, model_desc = get_model(args.feat_dim, args.classes, args.preset)
    model = model.to(device).train()
    opt = torch.optim.Adam(model.parameters())
    loss_fn = nn.CrossEntropyLoss()

    def step(x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x, lengths), y).backward()
        opt.step()

    print(f"model: {model_desc}; device: {device}; torch threads: {torch.get_num_threads()}")
    print(f"batch {args.batch_size} x (T in [{args.min_frames}, {args.max_frames}], {args.feat_dim}), "
          f"piece_length={args.piece_length}, mode={args.mode}, {args.batches} timed batches (median)\n")
    header = f"{'scheme':<8} {'copypaste ms':>13} {'pad ms':>8} {'model step ms':>14} {'cp / step':>10} {'out T_max':>10}"
    print(header)
    print("-" * len(header))
    for scheme in ["none"] + [s.strip() for s in args.schemes.split(",") if s.strip()]:
        cp = CopyPaste(scheme, neutral_label=0, p=1.0, piece_length=args.piece_length,
                       mode=args.mode, seed=args.seed)
        t_cp, t_pad, t_step, t_max = [], [], [], 0
        for b in range(args.batches + 1):
            feats, labels = make_batch()
            dt_cp, (out, out_labels) = timed(lambda: cp(feats, labels), lambda: None)
            dt_pad, (x, lengths, y) = timed(lambda: pad_batch(out, out_labels), sync)
            x, lengths, y = x.to(device), lengths.to(device), y.to(device)
            dt_step, _ = timed(lambda: step(x, lengths, y), sync)
            if b:  # first batch is warm-up
                t_cp.append(dt_cp), t_pad.append(dt_pad), t_step.append(dt_step)
                t_max = max(t_max, x.shape[1])
        m_cp, m_pad, m_step = (1e3 * statistics.median(v) for v in (t_cp, t_pad, t_step))
        print(f"{scheme:<8} {m_cp:>13.2f} {m_pad:>8.2f} {m_step:>14.1f} {m_cp / m_step:>9.1%} {t_max:>10}")


if __name__ == "__main__":
    main()
