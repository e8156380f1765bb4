"""Audio input: soundfile for reading, soxr for resampling, channels averaged to mono."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from copypaste_ser.errors import UserError

SAMPLE_RATE = 16000
#: The audio files recipes and folder inputs pick up (other formats soundfile reads are taken by name).
AUDIO_SUFFIXES = (".wav", ".flac")
#: One analysis frame (features.FeatureConfig.frame_length_ms): shorter audio cannot be framed.
MIN_SECONDS = 0.025
#: Peak-to-peak range below which a recording holds no signal: about 3 steps of 16-bit audio,
#: so digital silence, a DC offset and 1-bit dither all count as silent.
MIN_RANGE = 1e-4


class NoSignal(UserError):
    """Audio that is silent or constant (a DC level): there is no speech to analyse in it."""


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, require_signal: bool = True) -> np.ndarray:
    """Return float32 mono samples in [-1, 1] at ``sample_rate``.

    Refused in one line naming the file: NaN or infinite samples, no samples, less than a
    frame (25 ms) and, with ``require_signal`` (speech; noise clips may be silent), silent
    or constant audio (:class:`NoSignal`), which would otherwise be given an emotion.
    """
    if not Path(path).is_file():
        raise UserError(f"{path}: audio file is missing")
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise UserError(f"{path}: audio file is missing") from None
    except (sf.LibsndfileError, RuntimeError) as e:
        raise UserError(f"{path}: cannot read audio ({e})") from None
    wav = wav.mean(axis=1)
    check_samples(wav, sr, path, require_signal)
    if sr != sample_rate:
        wav = soxr.resample(wav, sr, sample_rate).astype(np.float32)
    return np.ascontiguousarray(wav, dtype=np.float32)


def check_samples(wav: np.ndarray, sr: int, path: str | Path, require_signal: bool = True) -> None:
    """The sanity checks of :func:`load_audio` on mono samples at rate ``sr``."""
    if wav.size == 0:
        raise UserError(f"{path}: audio file is empty")
    if not np.isfinite(wav).all():
        raise UserError(f"{path}: audio holds NaN or infinite samples; the file is damaged")
    if wav.size < MIN_SECONDS * sr:
        raise UserError(f"{path}: audio is too short to analyse ({1000 * wav.size / sr:.1f} ms; "
                        f"at least {1000 * MIN_SECONDS:.0f} ms)")
    if require_signal and float(np.ptp(wav)) < MIN_RANGE:
        raise NoSignal(f"{path}: no speech: the audio is silent or constant")


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


def is_audio_file(path: Path) -> bool:
    """A .wav/.flac file that is not hidden (skips macOS '._x.wav' AppleDouble debris)."""
    return (path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")
            and path.is_file())


def audio_files(folder: Path, recursive: bool = True) -> list[Path]:
    """All .wav/.flac files under ``folder`` (any letter case), sorted by path."""
    it = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in it if is_audio_file(p))
