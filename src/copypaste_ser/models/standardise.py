"""Per-dimension input statistics of training frames, for models that standardise their input
with buffers saved beside their weights (the scratch ResNet's ``input_norm``, the encoder head)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor


def frame_statistics(items: Iterable) -> tuple[Tensor, Tensor]:
    """Mean and std (at least 1e-3) over every frame of these ``(T, D)`` items."""
    frames = torch.cat([torch.tensor(np.asarray(f, dtype=np.float32)) for f in items])
    return frames.mean(0), frames.std(0).clamp_min(1e-3)
