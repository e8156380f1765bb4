"""The numpy front end of the wav2vec 2.0 / HuBERT / WavLM encoders: waveform rows, one per state.

A row holds the ``stride`` samples (320 at 16 kHz) one encoder state stands for
(ssl_encoders.py). Kept apart from the encoder so predicting through an exported ONNX graph
needs numpy, not torch (as whisper_mel.py for Whisper).
"""

from __future__ import annotations

import numpy as np

__all__ = ["wave_rows"]


def wave_rows(wave: np.ndarray, stride: int) -> np.ndarray:
    """``(T, stride)`` rows of the samples, the last row padded with zeros (T = ceil(n / stride))."""
    wave = np.asarray(wave, np.float32).reshape(-1)
    n = -(-len(wave) // stride)
    out = np.zeros(n * stride, np.float32)
    out[: len(wave)] = wave
    return out.reshape(n, stride)
