"""Paper features: 23-dim Kaldi MFCC, energy VAD, mean normalisation; and their disk cache.

MFCC come from kaldi-native-fbank (Kaldi-compatible). The VAD is Kaldi's ``compute-vad``
rule on C0 (log energy). Mean normalisation is *not* cached: it is applied per item after
chunking and CopyPaste (:func:`mean_normalize`), so a concatenation is normalised as a whole;
``FeatureConfig.mean_norm=False`` turns it off (data.pad_batch, inference.predict_proba).

Two kinds of frame features (``FeatureConfig.kind``):

* ``"mfcc"`` (default, the paper): ``num_ceps`` Kaldi MFCC, C0 = log energy.
* ``"resemblyzer-states"``: the ``"mel40-power"`` frames (after VAD) followed by the 768
  states of Resemblyzer's frozen LSTM run over them (encoders.py): 808 values per frame.
  Caching the encoder output once makes training a head on it cheap.
* ``"mel40-power"``: Resemblyzer's front end (resemblyzer.audio.wav_to_mel_spectrogram):
  ``num_mel_bins`` (40) librosa-style mel bands (Slaney scale and area norm, 0-8 kHz) of the
  POWER spectrum, no log, periodic Hann window of 400 samples, no pre-emphasis, no DC
  removal; the wave is first raised to -30 dBFS when quieter (resemblyzer's
  ``normalize_volume(wav, -30, increase_only=True)``). kaldi-native-fbank with
  ``is_librosa`` matches librosa.feature.melspectrogram to float precision; only the frame
  grid differs (Kaldi centres frame t at t*10 ms + 5 ms, librosa at t*10 ms). The same
  energy VAD (MFCC C0 of the unscaled wave) picks the frames.

VAD of noisy conditions (``extract_features(..., transform=..., vad_from=...)``):

* Noisy TEST sets (``vad_from="noisy"``, evaluate.py and the grid): the VAD is decided on
  the noisy wave itself, as a deployed system meets it; it never sees the clean signal.
  Their cache folder is ``<condition>+noisy-vad``, so test features cached before this
  rule (VAD from the clean audio, which made the 10 dB / 0 dB tests easier) are not reused.
* Noisy TRAINING copies (``vad_from="clean"``, the default; train.py): the VAD comes from
  the clean utterance, as in Kaldi's augmentation recipes, which copy the clean data's
  VAD decisions to the noisy copies; the copies then keep the same speech frames.

Cache layout, one folder per (feature config, condition)::

    <corpus>/features/<config key>/<condition>/feats.npy   all frames, stacked (float32)
                                               index.json  utt id -> [offset, n_frames]
                                               audio.json  utt id -> [audio path, size, mtime_ns]

An utterance's cached features are reused only while its audio file is the one they were
made from (same path, size and modification time; ``audio.json``), so a corpus prepared
again from other audio under the same ids is extracted again. Caches made before
``audio.json`` existed are trusted once and stamped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np
from tqdm.auto import tqdm

from .audio import load_audio
from .encoders import STATES_DIM, encode_arrays
from .errors import UserError
from .manifest import Utterance, atomic_write_text

#: A waveform transform for a test or training condition: (clean wave, utterance) -> wave.
WaveTransform = Callable[[np.ndarray, Utterance], np.ndarray]

FEATURE_KINDS = ("mfcc", "mel40-power", "resemblyzer-states")
STATES_KIND = "resemblyzer-states"
#: Where the VAD of a transformed (noisy) condition comes from: the clean wave or the noisy one.
VAD_SOURCES = ("clean", "noisy")
#: Lock file in each cache folder (extract_features holds it while it reads or extends the cache).
LOCK_FILE = ".lock"
#: Cache-folder suffix of a condition whose VAD was decided on the noisy wave itself.
NOISY_VAD_SUFFIX = "+noisy-vad"
#: Fields added after caches existed: left out of ``FeatureConfig.key`` at these values.
_KEY_DEFAULTS = {"kind": "mfcc", "mean_norm": True}


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 16000
    num_ceps: int = 23
    num_mel_bins: int = 23
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    low_freq: float = 20.0
    high_freq: float = -400.0  # Kaldi convention: negative = offset from Nyquist (7600 Hz)
    vad: bool = True
    vad_energy_threshold: float = 5.5
    vad_energy_mean_scale: float = 0.5
    vad_frames_context: int = 2
    vad_proportion_threshold: float = 0.12
    kind: str = "mfcc"              # see FEATURE_KINDS
    mean_norm: bool = True          # per-item mean normalisation (not cached)

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise UserError(f"unknown feature kind {self.kind!r}: choose one of {', '.join(FEATURE_KINDS)}")

    @property
    def dim(self) -> int:
        """Values per frame."""
        if self.kind == STATES_KIND:  # mel power, then the encoder's states (encoders.py)
            return self.num_mel_bins + STATES_DIM
        return self.num_ceps if self.kind == "mfcc" else self.num_mel_bins

    def key(self) -> str:
        """Cache folder name; mean_norm is not part of it (it is applied after the cache)."""
        d = {k: v for k, v in asdict(self).items() if k != "mean_norm"}
        if d["kind"] == _KEY_DEFAULTS["kind"]:  # caches made before ``kind`` existed stay valid
            del d["kind"]
        blob = json.dumps(d, sort_keys=True).encode()
        prefix = {"mfcc": "mfcc-", STATES_KIND: "rzstates-"}.get(self.kind, "mel40-")
        return prefix + hashlib.sha1(blob).hexdigest()[:10]

    def differences(self, other: FeatureConfig) -> list[str]:
        """Names of the fields whose values differ from ``other``'s."""
        a, b = asdict(self), asdict(other)
        return [k for k in a if a[k] != b[k]]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        return cls(**d)


def resemblyzer_states_features() -> FeatureConfig:
    """Resemblyzer's mel40 power frames followed by its frozen LSTM's states (encoders.py)."""
    return dataclasses.replace(resemblyzer_features(), kind=STATES_KIND)


def resemblyzer_features() -> FeatureConfig:
    """The ``mel40-power`` front end of the Resemblyzer model (no mean normalisation)."""
    return FeatureConfig(kind="mel40-power", num_mel_bins=40, low_freq=0.0, high_freq=0.0,
                         mean_norm=False)


def mfcc(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(n_frames, num_ceps) MFCC; C0 is log energy. ``wave`` is float in [-1, 1]."""
    opts = knf.MfccOptions()
    opts.frame_opts.samp_freq = cfg.sample_rate
    opts.frame_opts.frame_length_ms = cfg.frame_length_ms
    opts.frame_opts.frame_shift_ms = cfg.frame_shift_ms
    opts.frame_opts.dither = 0.0  # deterministic features; the cache relies on it
    opts.frame_opts.snip_edges = False
    opts.mel_opts.num_bins = cfg.num_mel_bins
    opts.mel_opts.low_freq = cfg.low_freq
    opts.mel_opts.high_freq = cfg.high_freq
    opts.num_ceps = cfg.num_ceps
    opts.use_energy = True
    # Kaldi's energy thresholds assume 16-bit sample values.
    return _run(knf.OnlineMfcc(opts), cfg.sample_rate, wave * 32768.0, cfg.num_ceps)


def _run(extractor, sample_rate: int, wave: np.ndarray, dim: int) -> np.ndarray:
    """Feed a whole wave to a kaldi-native-fbank extractor and stack its frames."""
    extractor.accept_waveform(sample_rate, np.ascontiguousarray(wave, dtype=np.float32))
    extractor.input_finished()
    out = np.empty((extractor.num_frames_ready, dim), dtype=np.float32)
    for t in range(len(out)):
        out[t] = extractor.get_frame(t)
    return out


#: -30 dBFS as an RMS of samples in [-1, 1] (resemblyzer's audio_norm_target_dBFS).
RESEMBLYZER_RMS = 10 ** (-30 / 20)


def mel_power(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(n_frames, num_mel_bins) librosa-style mel power spectrogram (Resemblyzer's input)."""
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0
    if 0.0 < rms < RESEMBLYZER_RMS:  # resemblyzer: normalize_volume(-30 dBFS, increase_only)
        wave = wave * np.float32(RESEMBLYZER_RMS / rms)
    opts = knf.FbankOptions()
    fo = opts.frame_opts
    fo.samp_freq = cfg.sample_rate
    fo.frame_length_ms = cfg.frame_length_ms
    fo.frame_shift_ms = cfg.frame_shift_ms
    fo.dither = 0.0
    fo.snip_edges = False
    fo.preemph_coeff = 0.0
    fo.remove_dc_offset = False
    fo.window_type = "hann"            # periodic Hann, as scipy/librosa
    fo.round_to_power_of_two = False   # n_fft = window length (400), as resemblyzer
    opts.mel_opts.num_bins = cfg.num_mel_bins
    opts.mel_opts.low_freq = cfg.low_freq
    opts.mel_opts.high_freq = cfg.high_freq
    opts.mel_opts.is_librosa = True    # Slaney mel scale and area normalisation
    opts.use_energy = False
    opts.use_log_fbank = False
    opts.use_power = True
    return _run(knf.OnlineFbank(opts), cfg.sample_rate, wave, cfg.num_mel_bins)


def frame_features(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """All frames of ``cfg.kind`` (no VAD, no normalisation)."""
    return mfcc(wave, cfg) if cfg.kind == "mfcc" else mel_power(wave, cfg)


def energy_vad(feats: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Kaldi compute-vad: a frame is speech when enough of its context is above threshold."""
    log_energy = feats[:, 0]
    if log_energy.size == 0:
        return np.zeros(0, dtype=bool)
    threshold = cfg.vad_energy_threshold + cfg.vad_energy_mean_scale * log_energy.mean()
    above = (log_energy > threshold).astype(np.float64)
    ctx = cfg.vad_frames_context
    kernel = np.ones(2 * ctx + 1)
    n = len(above)  # "full" then cut: mode="same" returns len(kernel) values for shorter inputs
    num = np.convolve(above, kernel, mode="full")[ctx: ctx + n]
    den = np.convolve(np.ones(n), kernel, mode="full")[ctx: ctx + n]
    return num >= den * cfg.vad_proportion_threshold


def compute_features(wave: np.ndarray, cfg: FeatureConfig, vad_wave: np.ndarray | None = None) -> np.ndarray:
    """Features (``cfg.kind``) of ``wave`` with VAD frames kept; VAD decided on ``vad_wave``
    when given (the clean signal of a noisy training copy), else on ``wave`` itself. All
    frames are kept when VAD finds none."""
    if cfg.kind == STATES_KIND:  # the encoder hears the voiced mel frames, as in training
        mel = compute_features(wave, dataclasses.replace(cfg, kind="mel40-power"), vad_wave)
        return np.concatenate([mel, encode_arrays([mel])[0]], axis=1)
    feats = frame_features(wave, cfg)
    if not cfg.vad:
        return feats
    if vad_wave is None and cfg.kind == "mfcc":
        ref = feats
    else:
        ref = mfcc(wave if vad_wave is None else vad_wave, cfg)
    voiced = energy_vad(ref, cfg)[: len(feats)]
    return feats[voiced] if voiced.any() else feats


def mean_normalize(feats: np.ndarray) -> np.ndarray:
    return feats - feats.mean(axis=0, keepdims=True)


# ---------------------------------------------------------------- cache
class FeatureStore:
    """Read-only view of one cached condition: ``store[utt_id] -> (n_frames, dim)``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.index: dict[str, list[int]] = json.loads((self.folder / "index.json").read_text())
        self.feats = np.load(self.folder / "feats.npy", mmap_mode="r")

    def __getitem__(self, utt_id: str) -> np.ndarray:
        off, n = self.index[utt_id]
        return np.asarray(self.feats[off: off + n])

    def __contains__(self, utt_id: str) -> bool:
        return utt_id in self.index

    def __len__(self) -> int:
        return len(self.index)

    def load_all(self) -> dict[str, np.ndarray]:
        data = np.asarray(self.feats)
        return {u: data[o: o + n] for u, (o, n) in self.index.items()}


def cache_folder(corpus_dir: Path, cfg: FeatureConfig, condition: str = "clean",
                 vad_from: str = "clean") -> Path:
    """The folder of one condition; a transformed condition whose VAD comes from the
    transformed wave gets its own folder (``<condition>+noisy-vad``), so features cached
    with the clean signal's VAD are never reused for it."""
    name = condition + NOISY_VAD_SUFFIX if vad_from == "noisy" and condition != "clean" else condition
    return Path(corpus_dir) / "features" / cfg.key() / name


def _extract_one(args: tuple) -> np.ndarray:
    utt, cfg, transform, vad_from = args
    wave = load_audio(utt.audio, cfg.sample_rate)
    if transform is None:
        return compute_features(wave, cfg)
    return compute_features(transform(wave, utt), cfg, vad_wave=wave if vad_from == "clean" else None)


def extract_features(utterances: Sequence[Utterance], cfg: FeatureConfig, corpus_dir: Path,
                     condition: str = "clean", transform: WaveTransform | None = None,
                     jobs: int = 1, progress: bool = True, vad_from: str = "clean") -> FeatureStore:
    """:func:`_extract` while holding the cache folder's lock: concurrent runs on one corpus
    take turns, so none reads a half-replaced cache or overwrites another's extension (the
    second finds the cache complete and only reads it)."""
    if vad_from not in VAD_SOURCES:
        raise ValueError(f"vad_from must be one of {VAD_SOURCES}, not {vad_from!r}")
    folder = cache_folder(corpus_dir, cfg, condition, vad_from if transform is not None else "clean")
    with cache_lock(folder):
        return _extract(utterances, cfg, corpus_dir, condition, transform, jobs, progress, vad_from)


@contextlib.contextmanager
def cache_lock(folder: Path) -> Iterator[None]:
    """Exclusive flock on ``folder/.lock`` (blocking); none where the folder cannot be written
    (a read-only cache is never rewritten, so readers need no lock). Folders it made are
    removed again when the work under the lock fails, so bad input leaves no trace."""
    made = [d for d in (folder, *folder.parents) if not d.exists()]
    anchor = folder.parents[len(made) - 1] if made else folder  # the deepest folder that exists
    with contextlib.suppress(OSError):
        stamp = anchor.stat()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    except BaseException:
        if made and [c.name for c in folder.iterdir()] == [LOCK_FILE]:
            with contextlib.suppress(OSError):
                (folder / LOCK_FILE).unlink()
                for d in made:  # innermost first
                    d.rmdir()
                os.utime(anchor, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # as it was
        raise
    finally:
        os.close(fd)  # closing releases the lock


def _extract(utterances: Sequence[Utterance], cfg: FeatureConfig, corpus_dir: Path,
             condition: str = "clean", transform: WaveTransform | None = None,
             jobs: int = 1, progress: bool = True, vad_from: str = "clean") -> FeatureStore:
    """Compute (or reuse) the cached features of ``utterances`` under ``condition``.

    With a ``transform``, ``vad_from="clean"`` decides the VAD on the untransformed wave
    (noisy training copies) and ``vad_from="noisy"`` on the transformed wave itself (noisy
    test sets); see the module docstring. A cache folder is complete once its index.json
    exists; it is written last, so an interrupted extraction is redone. A cache missing
    some utterances is extended.
    """
    if vad_from not in VAD_SOURCES:
        raise ValueError(f"vad_from must be one of {VAD_SOURCES}, not {vad_from!r}")
    folder = cache_folder(corpus_dir, cfg, condition, vad_from if transform is not None else "clean")
    old: dict[str, np.ndarray] = {}
    now = {u.id: audio_stamp(u) for u in utterances}
    stamps: dict[str, list] = {}
    if (folder / "index.json").is_file():
        store = FeatureStore(folder)
        stamps = _read_stamps(folder, store, now)
        if all(u.id in store and stamps.get(u.id) == now[u.id] for u in utterances):
            return store
        # keep what is cached from the same audio, extract the rest
        old = {k: v for k, v in store.load_all().items() if k not in now or stamps.get(k) == now[k]}
        stamps = {k: v for k, v in stamps.items() if k in old}
    wanted = [u for u in {u.id: u for u in utterances}.values() if u.id not in old]
    tasks = [(u, cfg, transform, vad_from) for u in wanted]
    desc = f"features {condition}"
    if jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(tqdm(pool.map(_extract_one, tasks, chunksize=8), total=len(tasks),
                                desc=desc, disable=not progress))
    else:
        results = [_extract_one(t) for t in tqdm(tasks, desc=desc, disable=not progress)]
    items = list(old.items()) + [(u.id, f) for u, f in zip(wanted, results)]
    stamps.update({u.id: now[u.id] for u in wanted})
    try:
        _write_store(folder, items, cfg, condition, stamps)
    except OSError as e:  # a read-only corpus folder (or a file in the way): one line
        raise UserError(f"{folder}: cannot write the feature cache ({e.strerror}); make "
                        f"{Path(corpus_dir) / 'features'} writable") from None
    return FeatureStore(folder)


def audio_stamp(utt: Utterance) -> list:
    """What identifies the audio an utterance's features were made from: [path, size, mtime_ns]."""
    try:
        st = os.stat(utt.audio)
    except OSError:  # missing: load_audio says so when it is needed
        return [str(utt.audio), -1, -1]
    return [str(utt.audio), st.st_size, st.st_mtime_ns]


def _read_stamps(folder: Path, store: FeatureStore, now: dict[str, list]) -> dict[str, list]:
    """The cache's audio stamps; a cache older than them trusts what it holds (stamped now)."""
    f = folder / "audio.json"
    if f.is_file():
        return json.loads(f.read_text())
    return {k: v for k, v in now.items() if k in store}


def _write_store(folder: Path, items: list[tuple[str, np.ndarray]], cfg: FeatureConfig,
                 condition: str, stamps: dict[str, list]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    index, offset = {}, 0
    for utt_id, f in items:
        index[utt_id] = [offset, int(len(f))]
        offset += len(f)
    dim = cfg.dim
    stacked = np.concatenate([f for _, f in items]) if items else np.zeros((0, dim), np.float32)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".feats.", suffix=".npy")
    with os.fdopen(fd, "wb") as f:
        np.save(f, stacked.astype(np.float32))
    os.replace(tmp, folder / "feats.npy")
    atomic_write_text(folder / "config.json", json.dumps({"features": cfg.to_dict(), "condition": condition}))
    atomic_write_text(folder / "audio.json", json.dumps(stamps))
    atomic_write_text(folder / "index.json", json.dumps(index))  # last: it marks the cache complete


def clear_cache(corpus_dir: Path) -> None:
    shutil.rmtree(Path(corpus_dir) / "features", ignore_errors=True)


def check_dim(feats: np.ndarray, cfg: FeatureConfig, source: str) -> None:
    if feats.ndim != 2 or feats.shape[1] != cfg.dim:
        raise UserError(f"{source}: features have shape {feats.shape}, expected (frames, {cfg.dim})")
