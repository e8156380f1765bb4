"""Whisper's log-mel front end in plain numpy: no torch, so ``predict`` runs on onnxruntime alone.

As OpenAI's ``whisper.audio.log_mel_spectrogram``: 16 kHz, 400-point periodic Hann window, hop 160
(10 ms), centred frames (reflect padding), the last STFT frame dropped, power spectrum, 80 (or 128)
Slaney mel bands 0-8 kHz, ``log10(max(x, 1e-10))``, floored at the utterance's maximum minus 8, then
``(x + 4) / 4``. The floor is per utterance here (Whisper computes it over its 30-s window, whose
padding is silence, so the maximum is the same). The model card spells the same steps out for
clients in other languages.

A row of the whisper-states features (and of the ONNX graph's input) is one encoder state's worth
of frames: two log-mel frames side by side (:func:`mel_rows`).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
MELS_PER_STATE = 2


def slaney_mel_filters(n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``(n_mels, n_fft // 2 + 1)`` triangular filters on the Slaney mel scale with area
    normalisation, 0 Hz to Nyquist (librosa.filters.mel's defaults, which Whisper uses)."""
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, dtype=np.float64)
        lin = f * 3.0 / 200.0
        return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), lin)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * 200.0 / 3.0)

    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


_FILTERS: dict[int, np.ndarray] = {}
#: Periodic Hann window (torch.hann_window's default, as Whisper uses it).
HANN = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def log_mel(wave: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """``(T, n_mels)`` Whisper log-mel frames of a 16-kHz wave in [-1, 1]; T = len(wave) // 160."""
    if n_mels not in _FILTERS:
        _FILTERS[n_mels] = slaney_mel_filters(n_mels)
    x = np.asarray(wave, dtype=np.float32).reshape(-1)
    if x.size < N_FFT // 2 + 1:  # reflect padding needs more samples than half a window
        x = np.pad(x, (0, N_FFT // 2 + 1 - x.size))
    padded = np.pad(x, N_FFT // 2, mode="reflect")
    frames = sliding_window_view(padded, N_FFT)[::HOP][:-1]  # Whisper drops the last frame
    spec = np.fft.rfft(frames * HANN, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    mel = np.log10(np.maximum(power @ _FILTERS[n_mels].T, 1e-10))
    mel = np.maximum(mel, mel.max() - 8.0)
    return np.ascontiguousarray((mel + 4.0) / 4.0, dtype=np.float32)


def mel_rows(wave: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """``(ceil(T / 2), 2 * n_mels)``: the wave's log-mel frames, two to a row."""
    mel = log_mel(wave, n_mels)
    if len(mel) % MELS_PER_STATE:
        floor = mel.min(axis=0, keepdims=True) if len(mel) else np.zeros((1, n_mels), np.float32)
        mel = np.concatenate([mel, floor], axis=0)
    return mel.reshape(-1, MELS_PER_STATE * n_mels)


def rows_to_mel(rows: np.ndarray, n_mels: int) -> np.ndarray:
    """The inverse of :func:`mel_rows`' stacking: ``(T, 2 * n_mels) -> (2T, n_mels)``."""
    return np.ascontiguousarray(rows).reshape(-1, n_mels)
