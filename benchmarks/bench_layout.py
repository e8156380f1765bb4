"""A thin-ResNet training step on CPU in the standard layout and channels-last (models/placement.py).

One step = forward + cross-entropy + backward + AdamW step on a (batch, frames, 23) batch of
random features; the median of --steps steps after one warm-up step, per preset and length.
Both layouts start from the same weights and see the same batch.

Usage:
  OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_layout.py --presets small paper --frames 400 800
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from copypaste_ser.models import PRESETS, ModelConfig, build_model
from copypaste_ser.models.placement import place


def step_seconds(preset: str, width: int | None, frames: int, batch: int, steps: int, channels_last: bool) -> float:
    torch.manual_seed(0)
    overrides = {"width": width} if width else {}
    model = build_model(ModelConfig(**{**PRESETS[preset], **overrides, "num_classes": 4, "feat_dim": 23}))
    if channels_last:
        place(model, "cpu", channels_last=True)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = torch.randn(batch, frames, 23), torch.randint(0, 4, (batch,))
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["small"])
    ap.add_argument("--width", type=int, default=16, help="0: the preset's own width")
    ap.add_argument("--frames", nargs="+", type=int, default=[400, 800])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}")
    print("| preset | frames | standard (s/step) | channels-last (s/step) | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for preset in args.presets:
        for frames in args.frames:
            a, b = (step_seconds(preset, args.width or None, frames, args.batch, args.steps, cl) for cl in (False, True))
            print(f"| {preset} | {frames} | {a:.3f} | {b:.3f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
