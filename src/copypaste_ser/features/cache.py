"""The feature cache: every utterance's frame features (features.py) computed once per corpus,
feature config and condition, and shared by every run.

VAD of noisy conditions (``extract_features(..., transform=..., vad_from=...)``):

* Noisy TEST sets (``vad_from="noisy"``, evaluate.py and the grid): the VAD is decided on
  the noisy wave itself, as a deployed system meets it; it never sees the clean signal.
  Their cache folder is ``<condition>+noisy-vad``, so test features cached before this
  rule (VAD from the clean audio, which made the 10 dB / 0 dB tests easier) are not reused.
* Noisy TRAINING copies (``vad_from="clean"``, the default; trainset.py): the VAD comes from
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
import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from copypaste_ser.data.audio import load_audio
from copypaste_ser.data.manifest import Utterance
from copypaste_ser.errors import UserError
from copypaste_ser.features.mfcc import FeatureConfig, WaveTransform, compute_features
from copypaste_ser.files.atomic import atomic_path, atomic_write_text

#: Where the VAD of a transformed (noisy) condition comes from: the clean wave or the noisy one.
VAD_SOURCES = ("clean", "noisy")
#: Lock file in each cache folder (extract_features holds it while it reads or extends the cache).
LOCK_FILE = ".lock"
#: Cache-folder suffix of a condition whose VAD was decided on the noisy wave itself.
NOISY_VAD_SUFFIX = "+noisy-vad"


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

    def view(self, ids: Sequence[str]) -> StoreView:
        """Just these utterances, read from the memory-mapped file when asked (several training
        processes then share one copy in the page cache instead of loading the whole cache each)."""
        missing = [i for i in ids if i not in self.index]
        if missing:
            raise KeyError(f"{self.folder}: {missing[0]!r} is not cached")
        return StoreView(self, list(ids))


class StoreView(Mapping):
    """``view[utt_id] -> (n_frames, dim)`` for a fixed set of ids of a :class:`FeatureStore`."""

    def __init__(self, store: FeatureStore, ids: list[str]):
        self.store, self.ids = store, ids
        self._known = set(ids)

    def __getitem__(self, utt_id: str) -> np.ndarray:
        if utt_id not in self._known:
            raise KeyError(utt_id)
        return self.store[utt_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


class OnTheFlyFeatures(Mapping):
    """The features of ``utterances`` under a wave ``transform``, computed each time one is read
    and never stored: equal to what :func:`extract_features` would cache (the same function on
    the same deterministic transform), for conditions whose cache would not fit the disk.
    Each read costs an extraction, so it suits data drawn a share at a time (noisy training
    copies with ``noise_epoch_fraction`` < 1)."""

    def __init__(self, utterances: Sequence[Utterance], cfg: FeatureConfig, transform: WaveTransform,
                 vad_from: str = "clean"):
        if vad_from not in VAD_SOURCES:
            raise ValueError(f"vad_from must be one of {VAD_SOURCES}, not {vad_from!r}")
        self._utts = {u.id: u for u in utterances}
        self._cfg, self._transform, self._vad_from = cfg, transform, vad_from

    def __getitem__(self, utt_id: str) -> np.ndarray:
        return _extract_one((self._utts[utt_id], self._cfg, self._transform, self._vad_from))

    def __iter__(self) -> Iterator[str]:
        return iter(self._utts)

    def __len__(self) -> int:
        return len(self._utts)


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
        # keep what is cached from the same audio (memory-mapped, copied when rewritten), extract the rest
        old = {k: store[k] for k in store.index if k not in now or stamps.get(k) == now[k]}
        stamps = {k: v for k, v in stamps.items() if k in old}
    wanted = [u for u in {u.id: u for u in utterances}.values() if u.id not in old]
    tasks = [(u, cfg, transform, vad_from) for u in wanted]
    desc = f"features {condition}"
    if jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(tqdm(pool.map(_extract_one, tasks, chunksize=8), total=len(tasks),
                                desc=desc, disable=None if progress else True))
    else:
        results = [_extract_one(t) for t in tqdm(tasks, desc=desc, disable=None if progress else True)]
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
    dim = int(items[0][1].shape[1]) if items else cfg.dim
    # written row block by row block: extending a cache of several GB never holds it twice in memory
    with atomic_path(folder / "feats.npy") as tmp:
        stacked = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(offset, dim))
        for utt_id, f in items:
            start, n = index[utt_id]
            stacked[start: start + n] = f
        stacked.flush()
        del stacked
    atomic_write_text(folder / "config.json", json.dumps({"features": cfg.to_dict(), "condition": condition}))
    atomic_write_text(folder / "audio.json", json.dumps(stamps))
    atomic_write_text(folder / "index.json", json.dumps(index))  # last: it marks the cache complete

