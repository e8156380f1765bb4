"""Where a model's weights live: the device, and on CPU optionally the layout of its convolution weights.

On CPU, oneDNN convolves channels-last tensors without reordering them first; for the thin
ResNet this made a training step about 1.6 times faster on one thread of an Intel Xeon
(docs/benchmarks.md), the outputs equal to rounding (about 3e-8 of 0.1). It is off by default:
with torch 2.13 on an AMD EPYC (Zen 4) CPU, the thin ResNet's backward pass corrupts the heap and
crashes for some input lengths (a 4-block `tiny` model, batch of 4, 380 or 399 frames; 400 is
fine). ``COPYPASTE_SER_CHANNELS_LAST=1`` turns it on where it has been checked to be safe. Only
4-D weights change layout (Module.to), so models without 2-D convolutions (the LSTM and
transformer encoders) are left as they were. GPU runs keep the default layout.
"""

from __future__ import annotations

import os

import torch

CHANNELS_LAST_ENV = "COPYPASTE_SER_CHANNELS_LAST"


def channels_last_wanted() -> bool:
    """Whether the user turned channels-last on (``COPYPASTE_SER_CHANNELS_LAST=1``)."""
    return os.environ.get(CHANNELS_LAST_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def place(model: torch.nn.Module, device: str | torch.device = "cpu",
          channels_last: bool | None = None) -> torch.nn.Module:
    """``model`` moved to ``device`` (in place, and returned); on CPU its convolution weights
    channels-last if ``channels_last`` (default: :func:`channels_last_wanted`)."""
    device = torch.device(device)
    model.to(device)
    if channels_last is None:
        channels_last = channels_last_wanted()
    if device.type == "cpu" and channels_last:
        model.to(memory_format=torch.channels_last)
    return model
