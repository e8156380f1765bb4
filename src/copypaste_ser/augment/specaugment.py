"""SpecAugment-style masking of feature matrices, and chaining of batch augmentations.

``SpecAugment(p=..., time_masks=2, time_width=0.1, freq_masks=2, freq_width=4)`` sets random
bands of a ``(T, F)`` feature matrix to its mean (Park et al., Interspeech 2019): time
masks of up to ``time_width`` of the item's frames, frequency masks of up to ``freq_width``
coefficients. Filling with the item's mean rather than zero keeps the per-item mean
normalisation that follows unchanged. It runs after CopyPaste (a concatenation is masked
as a whole) and, like CopyPaste, takes and returns ``(items, labels)`` batches, so
``Chain(copypaste, specaugment)`` is one augmentation for data.TrainBatches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

BatchAugment = Callable[[Sequence[Any], Sequence[int]], tuple[list, list[int]]]


class SpecAugment:
    """Random time and frequency masks on each item with probability ``p``."""

    def __init__(self, p: float = 1.0, time_masks: int = 2, time_width: float = 0.1, freq_masks: int = 2,
                 freq_width: int = 4, seed: int | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if time_masks < 0 or freq_masks < 0 or not 0.0 <= time_width <= 1.0 or freq_width < 0:
            raise ValueError("mask counts and widths must be >= 0 (time_width a share of the frames <= 1)")
        self.p, self.time_masks, self.time_width = p, time_masks, time_width
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def mask(self, feats: np.ndarray) -> np.ndarray:
        """A masked copy of one ``(T, F)`` matrix (the input is never changed)."""
        out = np.array(feats, dtype=np.float32)
        n_frames, n_dims = out.shape
        fill = out.mean(axis=0)
        for _ in range(self.time_masks):
            width = int(self.rng.integers(0, int(self.time_width * n_frames) + 1))
            start = int(self.rng.integers(0, n_frames - width + 1))
            out[start: start + width] = fill
        for _ in range(self.freq_masks):
            width = int(self.rng.integers(0, min(self.freq_width, n_dims) + 1))
            start = int(self.rng.integers(0, n_dims - width + 1))
            out[:, start: start + width] = fill[start: start + width]
        return out

    def __call__(self, items: Sequence[Any], labels: Sequence[int]) -> tuple[list, list[int]]:
        out = [self.mask(np.asarray(x)) if self.rng.random() < self.p else x for x in items]
        return out, list(labels)


class Chain:
    """Batch augmentations applied in order; ``last_plan`` is the first one's that has one
    (CopyPaste's), so the trainer still counts augmented batches."""

    def __init__(self, *steps: BatchAugment) -> None:
        self.steps = steps

    @property
    def last_plan(self) -> Any:
        return next((s.last_plan for s in self.steps if hasattr(s, "last_plan")), None)

    def reseed(self, seed: int | None) -> None:
        for k, step in enumerate(self.steps):
            if hasattr(step, "reseed"):
                step.reseed(None if seed is None else seed + k)

    def __call__(self, items: Sequence[Any], labels: Sequence[int]) -> tuple[list, list[int]]:
        for step in self.steps:
            items, labels = step(items, labels)
        return list(items), list(labels)
