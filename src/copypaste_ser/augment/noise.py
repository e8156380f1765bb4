"""Additive noise at a target SNR (paper section 3.2.3: MUSAN noise and music at 10, 5, 0 dB).

Two uses::

    # random, on the fly (audiomentations style), from Python
    aug = AddNoise(files, snr_db=(0, 15), p=0.5, seed=0)
    noisy = aug(wave)

    # deterministic per utterance: the six training copies and the noisy test sets
    sets = prepare_musan(Path("musan"))                # copypaste_ser.data.corpora.musan
    for cond in training_copies(sets):                 # noise/music x 10/5/0 dB, TRAIN pools
        extract_features(train_utts, cfg, corpus_dir, condition=cond.name, transform=cond)
    cond = test_condition(sets, 10)                    # noise+music TEST pools, "test-noise+music-10dB"

Decisions:

* Mixing (SNR definition on the active speech power, length fitting, degenerate inputs,
  no silent clipping): augment/snr.py, whose functions are re-exported here.
* Silent files in a pool (the stand-in data holds a real all-zero track) are skipped:
  :meth:`NoiseSource.draw` warns once per file and draws another clip from the same
  random stream, so results stay deterministic. A random segment that happens to be
  silent (a pause inside an audible clip) is redrawn too. After ``MAX_DRAWS`` failed
  draws a ``UserError`` names the pool and the silent files.
* Determinism of :class:`NoiseCondition`. Clip choice and offset come from a
  ``numpy`` generator seeded with SHA-256 of ``(seed, stream, utt.id)`` (never
  Python's salted ``hash()``), so a condition gives the same noisy set in every
  process and run, whatever the order of utterances. ``stream`` defaults to the
  condition's base name: the 10 dB and 0 dB test sets use the SAME clip and offset
  per utterance (only the level differs), while :func:`training_copies` gives each of
  the six copies its own stream so the copies use different noise.
* Test corruption (:func:`test_condition`) uses the test pools of noise AND music:
  per utterance the kind is drawn 50/50, then a clip of that kind, so the mix does
  not depend on the pool sizes.
* Clips are decoded lazily with ``audio.load_audio`` at the source's sample rate and
  kept in a per-process LRU cache bounded by ``cache_mb`` (MUSAN music alone is 42 h,
  ~10 GB decoded); pickling a source (worker processes) drops the cache.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from copypaste_ser.augment.snr import (
    SILENCE_POWER,
    active_power,
    check_snr,
    fit_length,
    mean_power,
    mix_at_snr,
)
from copypaste_ser.data.audio import SAMPLE_RATE, load_audio
from copypaste_ser.data.manifest import Utterance
from copypaste_ser.errors import UserError
from copypaste_ser.features.mfcc import FeatureConfig

__all__ = ["SILENCE_POWER", "MAX_DRAWS", "active_power", "fit_length", "mix_at_snr", "NoiseSource",
           "AddNoise", "NoiseCondition", "training_copies", "test_condition"]

#: How many clip/offset draws :meth:`NoiseSource.draw` tries before giving up on a pool.
MAX_DRAWS = 32

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]*$")


class NoiseSource:
    """Noise files decoded lazily (``load_audio`` at ``sample_rate``) with an LRU cache.

    ``sample(n, rng)`` returns a random clip fitted to ``n`` samples; ``draw`` also
    tells which file and offset were used. Silent files are skipped with a warning
    (see the module docstring); :meth:`clip` raises ``UserError`` for one.
    """

    def __init__(self, files: Sequence[str | Path], sample_rate: int = SAMPLE_RATE,
                 name: str | None = None, cache_mb: float = 512.0):
        self.files = [str(f) for f in files]
        self.sample_rate = int(sample_rate)
        self.name = name or f"noise pool of {len(self.files)} files"
        if not self.files:
            raise UserError(f"{self.name}: no noise files given")
        self.cache_bytes = int(cache_mb * 2 ** 20)
        self._init_cache()

    def _init_cache(self) -> None:
        self._cache: OrderedDict[int, np.ndarray | None] = OrderedDict()  # None = silent file
        self._cached_bytes = 0
        self._warned: set[int] = set()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for k in ("_cache", "_cached_bytes", "_warned"):
            state.pop(k)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_cache()

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"NoiseSource({self.name!r}, {len(self.files)} files)"

    def _load(self, i: int) -> np.ndarray | None:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        path = self.files[i]
        wav = load_audio(path, self.sample_rate, require_signal=False)  # silent clips are skipped below
        if not np.all(np.isfinite(wav)):
            raise UserError(f"{path}: noise clip contains NaN or Inf samples")
        clip = None if mean_power(wav) < SILENCE_POWER else wav
        self._cache[i] = clip
        self._cached_bytes += 0 if clip is None else clip.nbytes
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= 0 if old is None else old.nbytes
        return clip

    def clip(self, i: int) -> np.ndarray:
        """The whole decoded clip ``i`` (float32); ``UserError`` when it is silent."""
        clip = self._load(i)
        if clip is None:
            raise UserError(f"{self.files[i]}: noise clip is silent")
        return clip

    def draw(self, n: int, rng: np.random.Generator) -> tuple[int, int, np.ndarray]:
        """``(file index, offset, segment)``: a uniformly drawn clip fitted to ``n`` samples
        at a uniform offset (:func:`fit_length`); silent clips/segments are redrawn."""
        if n < 0:
            raise ValueError(f"cannot draw noise of negative length {n}")
        silent: list[str] = []
        for _ in range(MAX_DRAWS):
            i = int(rng.integers(len(self.files)))
            clip = self._load(i)
            if clip is None:
                if i not in self._warned:
                    self._warned.add(i)
                    warnings.warn(f"{self.files[i]}: noise clip is silent; skipped (another clip is drawn)",
                                  stacklevel=2)
                silent.append(self.files[i])
                continue
            room = len(clip) - n + 1 if len(clip) >= n else len(clip)
            offset = int(rng.integers(room))
            seg = fit_length(clip, n, offset=offset)
            if n == 0 or mean_power(seg) >= SILENCE_POWER:
                return i, offset, seg
        detail = f"; silent files: {', '.join(sorted(set(silent))[:3])}" if silent else ""
        raise UserError(f"{self.name}: no audible noise segment of {n} samples found in "
                        f"{MAX_DRAWS} random draws (first file {self.files[0]}){detail}")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """A random clip fitted to ``n`` samples (float32)."""
        return self.draw(n, rng)[2]


class AddNoise:
    """Random additive noise, audiomentations style: ``AddNoise(files)(wave) -> wave``.

    With probability ``p`` a uniformly drawn clip (random offset) is added at an SNR
    drawn uniformly from ``snr_db = (min, max)``; otherwise the input object is
    returned unchanged. ``wave`` is 1-D at ``sample_rate``. One generator seeded by
    ``seed`` drives every draw (``reseed`` restarts it); ``last`` records the last
    call as ``(path, offset, snr_db)`` or ``None`` when nothing was added.
    """

    def __init__(self, files: Sequence[str | Path] | NoiseSource, snr_db: tuple[float, float] = (0.0, 15.0),
                 p: float = 0.5, seed: int | None = None, sample_rate: int = SAMPLE_RATE,
                 cfg: FeatureConfig = FeatureConfig()):
        lo, hi = (check_snr(v) for v in snr_db)
        if lo > hi:
            raise ValueError(f"SNR range {snr_db} has min > max")
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"probability p must be in [0, 1], got {p}")
        self.source = files if isinstance(files, NoiseSource) else NoiseSource(files, sample_rate)
        self.snr_db = (lo, hi)
        self.p = float(p)
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)
        self.last: tuple[str, int, float] | None = None

    def reseed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        self.last = None
        if not self.rng.random() < self.p:
            return wave
        snr = float(self.rng.uniform(*self.snr_db))
        n = len(np.asarray(wave))
        i, offset, seg = self.source.draw(n, self.rng)
        self.last = (self.source.files[i], offset, snr)
        return mix_at_snr(wave, seg, snr, noise_name=self.source.files[i],
                          sample_rate=self.source.sample_rate, cfg=self.cfg)


class NoiseCondition:
    """Deterministic per-utterance corruption: a ``features.WaveTransform``.

    ``cond(wave, utt)`` adds a clip chosen, with its offset, from SHA-256 of
    ``(seed, stream, utt.id)`` at ``snr_db``. ``source`` may be several sources: one is
    drawn uniformly per utterance. ``name`` is the base name ("noise", "music",
    "test-noise+music"); the :attr:`name` property appends the SNR and, when
    ``seed != 0``, the seed ("noise-10dB", "test-noise+music-0dB-seed3") for use as
    the feature-cache condition. ``stream`` (default: the base name) decides which
    conditions share clip choices: same seed and stream -> same clip and offset.
    """

    def __init__(self, source: NoiseSource | Sequence[NoiseSource], snr_db: float, seed: int = 0,
                 name: str = "noise", *, stream: str | None = None,
                 cfg: FeatureConfig = FeatureConfig()):
        self.sources = [source] if isinstance(source, NoiseSource) else list(source)
        if not self.sources:
            raise ValueError("NoiseCondition needs at least one noise source")
        rates = {s.sample_rate for s in self.sources}
        if len(rates) != 1:
            raise ValueError(f"noise sources have different sample rates {sorted(rates)}")
        self.sample_rate = rates.pop()
        if not _NAME_RE.match(name):
            raise ValueError(f"condition name {name!r} must be letters, digits and + . _ - "
                             f"(it becomes a folder name)")
        self.base_name = name
        self.snr_db = check_snr(snr_db)
        self.seed = int(seed)
        self.stream = stream if stream is not None else name
        self.cfg = cfg

    @property
    def name(self) -> str:
        suffix = f"-seed{self.seed}" if self.seed != 0 else ""
        return f"{self.base_name}-{self.snr_db:g}dB{suffix}"

    def __repr__(self) -> str:
        return f"NoiseCondition({self.name!r}, sources={self.sources!r}, stream={self.stream!r})"

    def _rng(self, utt_id: str) -> np.random.Generator:
        key = f"{self.seed}\x1f{self.stream}\x1f{utt_id}".encode("utf-8")
        return np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:16], "little"))

    def choose(self, utt_id: str, n: int) -> tuple[str, int, np.ndarray]:
        """``(noise path, offset, segment)`` used for utterance ``utt_id`` of ``n`` samples."""
        rng = self._rng(utt_id)
        src = self.sources[int(rng.integers(len(self.sources)))]
        i, offset, seg = src.draw(n, rng)
        return src.files[i], offset, seg

    def __call__(self, wave: np.ndarray, utt: Utterance | str) -> np.ndarray:
        utt_id = utt if isinstance(utt, str) else utt.id
        path, _, seg = self.choose(utt_id, len(np.asarray(wave)))
        return mix_at_snr(wave, seg, self.snr_db, noise_name=path,
                          sample_rate=self.sample_rate, cfg=self.cfg)


def _pool(sets: dict, kind: str, which: str, sample_rate: int) -> NoiseSource:
    if kind not in sets:
        raise UserError(f"MUSAN split has no {kind!r} pools (found: {', '.join(sets) or 'none'})")
    files = getattr(sets[kind], which)
    return NoiseSource(files, sample_rate, name=f"MUSAN {kind} {which} pool")


def training_copies(sets: dict, snrs: Sequence[float] = (10, 5, 0), seed: int = 0,
                    sample_rate: int = SAMPLE_RATE, cfg: FeatureConfig = FeatureConfig()) -> list[NoiseCondition]:
    """The paper's six training copies: noise at each SNR, then music at each SNR, from
    the TRAIN pools of ``sets`` (``corpora.musan.prepare_musan``). Each copy has its own
    stream, so the copies of an utterance get different clips."""
    conds = []
    for kind in ("noise", "music"):
        src = _pool(sets, kind, "train", sample_rate)
        for snr in snrs:
            conds.append(NoiseCondition(src, snr, seed, name=kind,
                                        stream=f"train-{kind}-{check_snr(snr):g}dB", cfg=cfg))
    return conds


def test_condition(sets: dict, snr_db: float, seed: int = 0, sample_rate: int = SAMPLE_RATE,
                   cfg: FeatureConfig = FeatureConfig()) -> NoiseCondition:
    """Noisy-test corruption "test-noise+music-<snr>dB" from the TEST pools of noise and
    music (kind drawn 50/50 per utterance). All SNRs share one stream: the same clip and
    offset per utterance, only the level differs."""
    sources = [_pool(sets, "noise", "test", sample_rate), _pool(sets, "music", "test", sample_rate)]
    return NoiseCondition(sources, snr_db, seed, name="test-noise+music", cfg=cfg)


test_condition.__test__ = False  # not a pytest test despite the name
