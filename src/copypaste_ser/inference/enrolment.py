"""Enrolment: a speaker-normalised model predicting on one speaker's recordings.

A model trained with ``speaker_norm`` (features/speaker_norm.py) saw every speaker's encoder
states standardised with that speaker's own statistics: all their audio (``speaker``) or their
neutral utterances (``neutral-enrolment``). A single file has no such statistics, so ``predict``
asks for the speaker's enrolment recordings (``--enrol``): some of their speech (``speaker``), or
a few neutral sentences (``neutral-enrolment``). Their states' mean and standard deviation are
computed as training computed a speaker's, over every row of their windows with speech.

The head standardises its input states once more with the training statistics
(``in_mean``, ``in_std``); both steps are affine, so enrolling folds the speaker's statistics
into those two buffers: ``((s - m_e) / s_e - m) / s`` is ``(s - (m_e + m s_e)) / (s_e s)``. The
model itself is unchanged otherwise; the PyTorch engine runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from copypaste_ser.errors import UserError
from copypaste_ser.features.mfcc import FeatureConfig
from copypaste_ser.features.speaker_norm import MIN_STD
from copypaste_ser.inference.stream import read_windows, window_frames

#: The model encoders whose states are normalised per speaker and computed inside the model.
ENROLLABLE = ("whisper", "ssl")


def check_enrollable(model, source: str) -> None:
    """Only models that compute their encoder states themselves from raw rows can be enrolled."""
    if getattr(getattr(model, "config", None), "encoder", None) not in ENROLLABLE:
        raise UserError(f"--enrol: {source} is not a whisper-attention or ssl-attention model, the only "
                        f"speaker-normalised models predict can enrol; score it on a prepared corpus with "
                        f"`copypaste-ser score`")


def enrolment_statistics(model, features: FeatureConfig, files: Sequence[str | Path], window_seconds: float,
                         voiced_fn: Callable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the model's encoder states over the rows of every window
    with speech in ``files`` (float64 sums, one window at a time)."""
    import torch

    rate = features.sample_rate
    size = max(1, int(round(window_seconds * rate)))
    total, squares, count = 0.0, 0.0, 0
    for f in files:
        for w in read_windows(f, rate, size, size):
            rows, voiced = window_frames(w.wave, features, voiced_fn)
            if not voiced:
                continue
            with torch.no_grad():
                states = model.states(torch.from_numpy(rows)[None]).double().numpy()[0]
            total, squares, count = total + states.sum(0), squares + (states * states).sum(0), count + len(states)
    if not count:
        raise UserError(f"--enrol: no speech in {', '.join(str(f) for f in files)}; give recordings of the "
                        f"speaker talking")
    mean = total / count
    std = np.maximum(np.sqrt(np.maximum(squares / count - mean * mean, 0.0)), MIN_STD)
    return mean.astype(np.float32), std.astype(np.float32)


def enrol(model, mean: np.ndarray, std: np.ndarray) -> None:
    """Fold a speaker's state statistics into the head's input standardisation (in place)."""
    import torch

    with torch.no_grad():
        m, s = model.in_mean.clone(), model.in_std.clone()
        model.in_mean.copy_(torch.from_numpy(mean) + m * torch.from_numpy(std))
        model.in_std.copy_(torch.from_numpy(std) * s)
