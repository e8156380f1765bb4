"""Where a model's weights live: the device, and on CPU the layout of its convolution weights.

On CPU, oneDNN convolves channels-last tensors without reordering them first; for the thin
ResNet this makes a training step about 1.6 times faster on one thread (docs/benchmarks.md),
the outputs equal to rounding (about 3e-8 of 0.1). Only 4-D weights change layout (Module.to),
so models without 2-D convolutions (the LSTM and transformer encoders) are left as they were.
GPU runs keep the default layout: its speed there was not measured.
"""

from __future__ import annotations

import torch


def place(model: torch.nn.Module, device: str | torch.device = "cpu") -> torch.nn.Module:
    """``model`` moved to ``device`` (in place, and returned), channels-last on CPU."""
    device = torch.device(device)
    model.to(device)
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    return model
