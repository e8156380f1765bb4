"""Audio input: soundfile for reading, soxr for resampling, channels averaged to mono."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import UserError

SAMPLE_RATE = 16000


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Return float32 mono samples in [-1, 1] at ``sample_rate``."""
    if not Path(path).is_file():
        raise UserError(f"{path}: audio file is missing")
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise UserError(f"{path}: audio file is missing") from None
    except (sf.LibsndfileError, RuntimeError) as e:
        raise UserError(f"{path}: cannot read audio ({e})") from None
    wav = wav.mean(axis=1)
    if wav.size == 0:
        raise UserError(f"{path}: audio file is empty")
    if sr != sample_rate:
        wav = soxr.resample(wav, sr, sample_rate).astype(np.float32)
    return np.ascontiguousarray(wav, dtype=np.float32)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the header, without decoding."""
    if not Path(path).is_file():
        raise UserError(f"{path}: audio file is missing")
    try:
        info = sf.info(str(path))
    except FileNotFoundError:
        raise UserError(f"{path}: audio file is missing") from None
    except (sf.LibsndfileError, RuntimeError) as e:
        raise UserError(f"{path}: cannot read audio ({e})") from None
    return info.frames / info.samplerate


def write_audio(path: str | Path, wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(wav, -1, 1), sample_rate, subtype="PCM_16")
