"""Per-dimension input statistics of training frames, for models that standardise their input
with buffers saved beside their weights (the scratch ResNet's ``input_norm``, the encoder head)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor


def frame_statistics(items: Iterable) -> tuple[Tensor, Tensor]:
    """Mean and std (sample std, at least 1e-3) over every frame of these ``(T, D)`` items,
    accumulated item by item in float64: memory stays that of one item, not of the corpus."""
    n, total, squares = 0, None, None
    for f in items:
        x = np.asarray(f, dtype=np.float64)
        if total is None:
            total, squares = np.zeros(x.shape[1]), np.zeros(x.shape[1])
        n += len(x)
        total += x.sum(0)
        squares += np.square(x).sum(0)
    if total is None or n < 2:
        raise ValueError("input statistics need at least two frames")
    mean = total / n
    var = np.maximum(squares - n * mean**2, 0.0) / (n - 1)
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(np.sqrt(var), dtype=torch.float32).clamp_min(1e-3)
