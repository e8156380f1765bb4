"""Mixing speech and noise at a target SNR: active speech power, fitting a clip to a length,
and the mixture itself. The noise sources and conditions built on it are in noise.py.

Decisions:

* SNR definition. ``SNR = 10 log10(P_speech / P_noise)`` where ``P_speech`` is the
  *active* speech power (:func:`active_power`): the mean of ``x**2`` over the samples
  of the 25 ms / 10 ms frames that the features' energy VAD (``features.mfcc`` +
  ``features.energy_vad``, Kaldi ``compute-vad`` rule, same ``FeatureConfig``) marks
  as speech; the whole-signal power when the VAD marks nothing. ``P_noise`` is the mean
  power of the whole noise segment actually added (after cropping/looping to the
  speech length, before scaling). Pauses therefore do not lower the speech level.
* Length. :func:`fit_length` crops a longer clip at an offset, or loops (tiles) a
  shorter one starting at an offset, wrapping around; offsets are uniform random
  when an ``rng`` is given. :func:`mix_at_snr` itself fits with offset 0.
* Degenerate inputs of :func:`mix_at_snr`. Empty speech -> empty output. Silent
  speech (active power < ``SILENCE_POWER`` = 1e-10, i.e. below -100 dBFS) -> the
  speech is returned unchanged (as float32): there is nothing to measure an SNR
  against. Silent noise (segment power < 1e-10) -> ``UserError("<path>: noise clip
  is silent ...")`` when ``noise_name`` is given, else ``ValueError``. Non-finite
  samples or SNR -> ``ValueError`` (``UserError`` naming the clip for noise with a
  name). The result is never NaN/Inf.
* No silent clipping. The mixture is computed in float64; when its peak exceeds 1.0
  the WHOLE mixture (speech and noise alike) is divided by the peak, which keeps the
  SNR exactly and only lowers the level. The result is float32.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from copypaste_ser.data.audio import SAMPLE_RATE
from copypaste_ser.errors import UserError
from copypaste_ser.features.mfcc import FeatureConfig, energy_vad, mfcc

#: Bumped whenever a change here changes what a noisy copy sounds like: it is part of the noisy
#: feature caches' condition names (training/trainset.py, evaluation/evaluate.py), so they are remade.
MIXING_VERSION = 1

#: Below this mean power (-100 dBFS for samples in [-1, 1]) a signal counts as silent.
SILENCE_POWER = 1e-10


def check_wave(x: np.ndarray, what: str, name: str | None = None) -> np.ndarray:
    """1-D float64 view/copy of ``x``; refuses other shapes and non-finite samples."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{what} must be a 1-D waveform, got shape {a.shape}")
    a = a.astype(np.float64, copy=False)
    if not np.all(np.isfinite(a)):
        msg = f"{what} contains NaN or Inf samples"
        if name is not None:
            raise UserError(f"{name}: {msg}")
        raise ValueError(msg)
    return a


def mean_power(x: np.ndarray) -> float:
    """Mean of ``x**2`` in float64 (0.0 when empty)."""
    return float(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0


def _voiced_sample_mask(n: int, voiced: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Samples covered by the voiced frames (Kaldi framing with snip_edges=False)."""
    shift = int(round(cfg.frame_shift_ms * cfg.sample_rate / 1000))
    length = int(round(cfg.frame_length_ms * cfg.sample_rate / 1000))
    t = np.flatnonzero(voiced)
    starts = np.clip(t * shift + shift // 2 - length // 2, 0, n)
    ends = np.clip(starts + length, 0, n)
    diff = np.zeros(n + 1, dtype=np.int64)
    np.add.at(diff, starts, 1)
    np.add.at(diff, ends, -1)
    return np.cumsum(diff[:-1]) > 0


def active_power(speech: np.ndarray, sample_rate: int = SAMPLE_RATE,
                 cfg: FeatureConfig = FeatureConfig()) -> float:
    """Mean power of the samples in the frames the features' energy VAD marks as speech.

    Frames are the feature frames of ``cfg`` (25 ms / 10 ms by default); the VAD is
    ``features.energy_vad`` on ``features.mfcc`` (C0), as in feature extraction, and is
    applied whatever ``cfg.vad`` says. When it marks no frame, the whole-signal power is
    returned. Empty input -> 0.0.
    """
    x = check_wave(speech, "speech")
    if x.size == 0:
        return 0.0
    if cfg.sample_rate != sample_rate:
        cfg = replace(cfg, sample_rate=sample_rate)
    voiced = energy_vad(mfcc(x.astype(np.float32), cfg), cfg)
    if voiced.any():
        mask = _voiced_sample_mask(len(x), voiced, cfg)
        if mask.any():
            return mean_power(x[mask])
    return mean_power(x)


def fit_length(noise: np.ndarray, n: int, rng: np.random.Generator | None = None,
               offset: int | None = None) -> np.ndarray:
    """``n`` samples of ``noise``: cropped at ``offset`` when the clip is long enough,
    else looped starting at ``offset`` (wrapping around to the clip's start).

    Without ``offset``, it is uniform in ``[0, len - n]`` (crop) or ``[0, len)`` (loop)
    when ``rng`` is given, else 0. A crop may be a view of ``noise``.
    """
    length = len(noise)
    if n < 0:
        raise ValueError(f"cannot fit noise to a negative length {n}")
    if length == 0:
        raise ValueError("cannot fit an empty noise clip")
    if n == 0:
        return noise[:0]
    room = length - n + 1 if length >= n else length
    if offset is None:
        offset = int(rng.integers(room)) if rng is not None else 0
    if not 0 <= offset < room:
        raise ValueError(f"noise offset {offset} out of range [0, {room}) for a clip of {length} "
                         f"samples fitted to {n}")
    if length >= n:
        return noise[offset: offset + n]
    return np.take(noise, (offset + np.arange(n)) % length)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, *,
               noise_name: str | None = None, speech_power: float | None = None,
               sample_rate: int = SAMPLE_RATE, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """``speech + g * noise`` with ``g`` such that ``10 log10(P_active(speech) / P(g * noise)) == snr_db``.

    ``noise`` is fitted to the speech length with :func:`fit_length` at offset 0 when
    the lengths differ (crop or fit it yourself to choose the offset). ``speech_power``
    overrides :func:`active_power`. ``noise_name`` (a path) turns noise errors into
    ``UserError`` naming it. Rules for silent/degenerate inputs and the peak rescaling
    (whole mixture divided by its peak when above 1.0, SNR kept): see the module
    docstring. Returns float32, never NaN/Inf.
    """
    snr = float(snr_db)
    if not math.isfinite(snr):
        raise ValueError(f"SNR must be a finite number of dB, got {snr_db!r}")
    x = check_wave(speech, "speech")
    if x.size == 0:
        return np.zeros(0, dtype=np.float32)
    p_speech = active_power(x, sample_rate, cfg) if speech_power is None else float(speech_power)
    if not p_speech >= SILENCE_POWER:  # also catches NaN
        return x.astype(np.float32)
    nz = check_wave(noise, "noise clip", noise_name)
    if nz.size and len(nz) != len(x):
        nz = fit_length(nz, len(x), offset=0)
    p_noise = mean_power(nz)
    if not p_noise >= SILENCE_POWER:
        what = f"noise clip is silent (power {p_noise:.3g} < {SILENCE_POWER:g}): no SNR can be set"
        if noise_name is not None:
            raise UserError(f"{noise_name}: {what}")
        raise ValueError(what)
    with np.errstate(over="ignore"):
        gain = math.sqrt(p_speech / p_noise) * 10.0 ** (-snr / 20.0)
    if not math.isfinite(gain):
        raise ValueError(f"SNR {snr} dB is out of range")
    mix = x + gain * nz
    peak = float(np.max(np.abs(mix)))
    if not math.isfinite(peak):
        raise ValueError(f"SNR {snr} dB is out of range")
    if peak > 1.0:
        mix /= peak  # scale speech and noise together: SNR kept, no clipping
    return mix.astype(np.float32)


def check_snr(snr_db: float) -> float:
    """``snr_db`` as a float; ValueError unless it is a finite number of dB."""
    snr = float(snr_db)
    if not math.isfinite(snr):
        raise ValueError(f"SNR must be a finite number of dB, got {snr_db!r}")
    return snr
