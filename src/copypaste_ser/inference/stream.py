"""Long recordings, block by block: windows that cover a file to its end, and their features.

Memory stays flat in the file's length: soundfile reads fixed blocks, soxr resamples them as a
stream, and only the samples of the windows not yet emitted are kept. Every window's features
are made from the window's own samples exactly as ``features.compute_features`` makes them
for a training file (Resemblyzer's volume rule, energy VAD with the window's own statistics),
then mean-normalised per window as ``data.pad_batch`` does, so the model hears what it was
trained on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from numpy.lib.stride_tricks import sliding_window_view

from copypaste_ser.data.audio import MIN_RANGE, MIN_SECONDS
from copypaste_ser.errors import UserError
from copypaste_ser.features.mfcc import (
    SSL_KIND,
    STATES_KIND,
    WHISPER_KIND,
    FeatureConfig,
    energy_vad,
    frame_features,
    mean_normalize,
    mfcc,
)

#: Fewest voiced frames (0.1 s) a window needs to be given an emotion.
MIN_VOICED = 10
#: Kaldi log energy (C0, 16-bit scale, 400-sample frame) of a frame at -55 dBFS RMS. The energy
#: VAD's threshold is relative to its input's mean, which suits an utterance (training) but
#: calls faint noise or resampling ringing "speech" in a window of near-silence; frames below
#: this level are never voiced here. Voiced frames of the training corpora are far louder.
LEVEL_FLOOR = float(np.log(400 * (10 ** (-55 / 20) * 32768.0) ** 2))
#: Samples read per block (10 s at 16 kHz): the unit of memory, whatever the file's length.
BLOCK = 160_000


def window_spans(n: int, size: int, hop: int) -> list[tuple[int, int]]:
    """``[start, end)`` sample spans of windows of ``size`` every ``hop`` over ``n`` samples.

    The last window is aligned to the end (it may overlap the one before), so the spans cover
    ``0 .. n`` with no gap whenever ``hop <= size``; a file shorter than a window is one span.
    """
    if n <= size:
        return [(0, n)]
    spans = [(s, s + size) for s in range(0, n - size + 1, hop)]
    if spans[-1][1] < n:  # the tail: one more window, flush with the end
        spans.append((n - size, n))
    return spans


@dataclass(frozen=True)
class Window:
    start: int          # first sample (at the model's sample rate)
    end: int            # one past the last sample
    wave: np.ndarray    # float32 mono samples [start, end)


def check_audio_path(path: Path) -> None:
    """An audio file to read: one line for a folder or a missing file (checked for every file
    before a model is loaded)."""
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not an audio file; give the files in it (e.g. {path}/*.wav)")
    if not path.is_file():
        raise UserError(f"{path}: audio file is missing")


def _open(path: Path) -> sf.SoundFile:
    check_audio_path(path)
    try:
        return sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise UserError(f"{path}: cannot read audio ({e})") from None


def _blocks(path: Path, rate: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks at ``rate``; refuses empty, too short and damaged (NaN/inf) audio."""
    with _open(path) as f:
        if f.frames == 0:
            raise UserError(f"{path}: audio file is empty")
        if f.frames < MIN_SECONDS * f.samplerate:
            raise UserError(f"{path}: audio is too short to analyse ({1000 * f.frames / f.samplerate:.1f} ms; "
                            f"at least {1000 * MIN_SECONDS:.0f} ms)")
        stream = soxr.ResampleStream(f.samplerate, rate, 1, dtype="float32") if f.samplerate != rate else None
        block = max(1, int(BLOCK * f.samplerate / rate))
        blocks, done = f.blocks(blocksize=block, dtype="float32", always_2d=True), 0
        while True:
            try:
                raw = next(blocks)
            except StopIteration:
                break
            except (sf.LibsndfileError, RuntimeError) as e:  # a file cut short or damaged after its header
                raise UserError(f"{path}: cannot read audio after {done / f.samplerate:.1f} s ({e}); "
                                f"the file is damaged or cut short") from None
            done += len(raw)
            mono = raw.mean(axis=1, dtype=np.float32)
            if not np.isfinite(mono).all():
                raise UserError(f"{path}: audio holds NaN or infinite samples; the file is damaged")
            yield mono if stream is None else stream.resample_chunk(mono, last=False)
        if stream is not None:
            yield stream.resample_chunk(np.zeros(0, np.float32), last=True)


def read_windows(path: str | Path, rate: int, size: int, hop: int) -> Iterator[Window]:
    """The windows of :func:`window_spans` in order, read block by block.

    Regular windows are emitted as soon as their samples are in; the end-aligned last window
    once the file's length is known (a resampled length is only known at the end).
    """
    path = Path(path)
    buf = np.zeros(0, np.float32)  # samples from ``offset`` on
    offset = 0                     # file position of buf[0]
    seen = 0                       # samples read so far
    next_start = 0                 # start of the next regular window
    emitted: set[int] = set()
    for block in _blocks(path, rate):
        buf = np.concatenate([buf, block])
        seen += len(block)
        while next_start + size <= seen:
            a = next_start - offset
            yield Window(next_start, next_start + size, buf[a: a + size].copy())
            emitted.add(next_start)
            next_start += hop
        # keep only what a later window can still need: memory bounded by block + window
        keep_from = min(next_start, max(0, seen - size))
        buf, offset = buf[keep_from - offset:], keep_from
    for start, end in window_spans(seen, size, hop):
        if start not in emitted:
            a = start - offset
            yield Window(start, end, buf[a: a + (end - start)].copy())


def wave_windows(wave: np.ndarray, sample_rate: int, rate: int, size: int, hop: int,
                 name: str = "<array>") -> Iterator[Window]:
    """The windows of :func:`window_spans` over an in-memory wave (mono, or (samples, channels)
    averaged), resampled to ``rate``; the checks of a file's samples, naming ``name``."""
    from copypaste_ser.data.audio import check_samples

    x = np.asarray(wave, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise UserError(f"{name}: a wave must be 1-D samples or (samples, channels), not shape {x.shape}")
    if not isinstance(sample_rate, (int, np.integer)) or not 1000 <= sample_rate <= 384000:
        raise UserError(f"{name}: sample_rate must be an integer number of Hz (1000-384000), not {sample_rate!r}")
    check_samples(x, int(sample_rate), name, require_signal=False)
    if sample_rate != rate:
        x = soxr.resample(x, int(sample_rate), rate).astype(np.float32)
    for start, end in window_spans(len(x), size, hop):
        yield Window(start, end, x[start:end].copy())


def log_energy(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Kaldi's raw log energy per frame (MFCC C0 of ``features.mfcc``, to ~1e-5), 5x faster.

    The mel models' VAD needs only C0, not the whole MFCC: frames of ``snip_edges=false``
    (centred on ``t * shift + shift / 2``, edges reflected), DC offset removed, 16-bit scale.
    """
    shift = int(cfg.sample_rate * cfg.frame_shift_ms / 1000)
    length = int(cfg.sample_rate * cfg.frame_length_ms / 1000)
    n = len(wave)
    frames = (n + shift // 2) // shift
    left = length // 2 - shift // 2
    right = max(0, (frames - 1) * shift - left + length - n)
    if n <= max(left, right):  # shorter than a reflection: Kaldi's own code
        return mfcc(wave, cfg)[:, 0]
    padded = np.pad(wave, (left, right), mode="symmetric")  # symmetric = Kaldi's -s-1 reflection
    x = sliding_window_view(padded, length)[::shift][:frames].astype(np.float64) * 32768.0
    x -= x.mean(axis=1, keepdims=True)
    return np.log(np.maximum(np.einsum("ij,ij->i", x, x), np.finfo(np.float32).eps))


def window_frames(wave: np.ndarray, cfg: FeatureConfig, voiced_fn=None) -> tuple[np.ndarray, int]:
    """Model input of one window and its voiced frame count (0: no speech).

    As ``features.compute_features`` on a file holding only this window: frame features, the
    energy VAD decided on the window's own MFCC (or ``voiced_fn(wave, n_frames)``, e.g.
    silero), then mean normalisation when the run used it. For the ``resemblyzer-states``
    kind the voiced MEL frames are returned: the model runs the frozen encoder on them itself
    (models/encoder_head.py), as the feature cache did.
    """
    if cfg.kind == WHISPER_KIND:
        return whisper_window(wave, cfg, voiced_fn)
    if cfg.kind == SSL_KIND:
        return ssl_window(wave, cfg, voiced_fn)
    base = dataclasses.replace(cfg, kind="mel40-power") if cfg.kind == STATES_KIND else cfg
    if float(np.ptp(wave)) < MIN_RANGE:  # silent or constant (audio.NoSignal's rule)
        return np.zeros((0, base.dim), np.float32), 0
    feats = frame_features(wave, base)
    if voiced_fn is not None:
        voiced = voiced_fn(wave, len(feats))
    elif cfg.vad:
        ref = feats if base.kind == "mfcc" else log_energy(wave, base)[:, None]
        voiced = (energy_vad(ref, base) & (ref[:, 0] > LEVEL_FLOOR))[: len(feats)]
    else:
        voiced = np.ones(len(feats), bool)
    n = int(voiced.sum())
    if n < MIN_VOICED:  # too little speech to call an emotion
        return feats[:0], 0
    out = feats[voiced]
    if cfg.mean_norm:
        out = mean_normalize(out)
    return np.ascontiguousarray(out, dtype=np.float32), n


def whisper_window(wave: np.ndarray, cfg: FeatureConfig, voiced_fn=None) -> tuple[np.ndarray, int]:
    """Whisper log-mel rows of the whole window (the encoder hears it all, as in training); the
    VAD only decides whether there is speech and how many frames of it."""
    from copypaste_ser.features.whisper_mel import mel_rows

    if float(np.ptp(wave)) < MIN_RANGE:
        return np.zeros((0, cfg.input_dim), np.float32), 0
    rows = mel_rows(wave, cfg.num_mel_bins)
    return _speech_or_nothing(wave, cfg, np.ascontiguousarray(rows, dtype=np.float32), 2 * len(rows), voiced_fn)


def ssl_window(wave: np.ndarray, cfg: FeatureConfig, voiced_fn=None) -> tuple[np.ndarray, int]:
    """Waveform rows (one per encoder state) of the whole window, as the feature cache makes them
    (features/ssl_encoders.py); the model encodes them itself. The VAD (on the rows' 20-ms grid)
    only decides whether there is speech and how many rows of it."""
    from copypaste_ser.features.ssl_rows import wave_rows

    if float(np.ptp(wave)) < MIN_RANGE:
        return np.zeros((0, cfg.input_dim), np.float32), 0
    rows = wave_rows(wave, cfg.input_dim)
    return _speech_or_nothing(wave, cfg, rows, len(rows), voiced_fn)


def _speech_or_nothing(wave: np.ndarray, cfg: FeatureConfig, rows: np.ndarray, vad_frames: int,
                       voiced_fn=None) -> tuple[np.ndarray, int]:
    """A whole-window encoder's rows and its voiced frame count, or no rows where the VAD (silero
    over ``vad_frames`` frames, else the energy VAD) finds too little speech."""
    if voiced_fn is not None:
        voiced = voiced_fn(wave, vad_frames)
    else:
        ref = log_energy(wave, cfg)[:, None]
        voiced = energy_vad(ref, cfg) & (ref[:, 0] > LEVEL_FLOOR)
    n = int(np.asarray(voiced).sum())
    if n < MIN_VOICED:
        return rows[:0], 0
    return rows, n
