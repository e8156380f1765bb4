"""MUSAN (Snyder et al., 2015) noise and music pools for noise augmentation (paper section 3.2.3).

The paper adds MUSAN noise and music to the training set (six extra copies: noise and
music at 10, 5 and 0 dB SNR) and builds noisy test sets at 10 and 0 dB. To keep the
test corruption unseen in training, every kind's files are split once into two
DISJOINT pools: ``train`` (augmentation copies) and ``test`` (test-set corruption).

Layout. ``root`` holds ``noise/``, ``music/`` and optionally ``speech/``; each is
searched recursively for ``.wav`` and ``.flac`` files (case-insensitive; hidden
files such as ``._x.wav`` are ignored), so both the real MUSAN layout
(``music/fma/*.wav``, ``noise/free-sound/*.wav``, ...) and a flat one
(``music/*.flac``) work. A ``root`` that has no ``noise/`` but a ``musan/``
subfolder with one (the unpacked MUSAN tarball) is accepted too.

Split. Per kind, the files are sorted by their path relative to ``root`` and
shuffled with ``numpy.random.default_rng([seed, <stable number of the kind>])``;
the first ``round(test_fraction * n)`` files (at least 1, at most ``n - 1``) form
the test pool, the rest the train pool; both pools are stored sorted. The split
therefore depends only on the relative file names, the seed and the fraction, not
on where the corpus lives or on the machine. A kind with fewer than 2 files is
refused (it cannot give two non-empty disjoint pools).

Errors (``UserError``, one line naming the folder): missing ``root``, missing
``noise/`` or ``music/``, a kind folder without audio files (``speech/`` too when
present: an empty one is a broken download), fewer than 2 files, a bad
``test_fraction``.

Persistence. :func:`save_musan` writes ``musan.json`` (absolute paths, seed,
fraction) so the pools are fixed once prepared; :func:`load_musan` reads it back
and re-checks that the pools are disjoint; :func:`load_or_prepare_musan` reuses an
existing ``musan.json`` and refuses one made with another seed or fraction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from copypaste_ser.errors import UserError
from copypaste_ser.files.atomic import atomic_write_text

__all__ = ["NoiseSet", "KINDS", "AUDIO_EXTENSIONS", "MUSAN_JSON", "list_audio", "split_pool",
           "prepare_musan", "save_musan", "load_musan", "load_or_prepare_musan", "summary"]

KINDS = ("noise", "music", "speech")
REQUIRED_KINDS = ("noise", "music")
AUDIO_EXTENSIONS = (".wav", ".flac")
MUSAN_JSON = "musan.json"
_FORMAT_VERSION = 1


@dataclass
class NoiseSet:
    """The files of one MUSAN kind, split into disjoint train and test pools (absolute paths)."""

    kind: str
    train: list[str]
    test: list[str]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown MUSAN kind {self.kind!r}: choose one of {', '.join(KINDS)}")

    def __len__(self) -> int:
        return len(self.train) + len(self.test)


def list_audio(folder: Path) -> list[Path]:
    """Audio files (.wav/.flac, any case) under ``folder``, recursively, sorted by path."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".") and p.is_file())


def _kind_number(kind: str) -> int:
    return int.from_bytes(hashlib.sha256(kind.encode()).digest()[:4], "little")


def _check_fraction(test_fraction: float) -> None:
    try:
        ok = 0.0 < float(test_fraction) < 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UserError(f"MUSAN test fraction must be between 0 and 1 (exclusive), got {test_fraction!r}")


def split_pool(kind: str, files: list[str], test_fraction: float = 0.3, seed: int = 0,
               source: str | None = None) -> NoiseSet:
    """Split ``files`` (already in a canonical order) into disjoint train/test pools.

    ``source`` names the folder in error messages.
    """
    _check_fraction(test_fraction)
    where = source or kind
    if len(files) < 2:
        raise UserError(f"{where}: MUSAN {kind} needs at least 2 audio files to split into "
                        f"train and test pools, found {len(files)}")
    n = len(files)
    n_test = min(max(int(round(test_fraction * n)), 1), n - 1)
    order = np.random.default_rng([int(seed), _kind_number(kind)]).permutation(n)
    test = sorted(files[i] for i in order[:n_test])
    train = sorted(files[i] for i in order[n_test:])
    return NoiseSet(kind, train, test)


def _resolve_root(root: Path) -> Path:
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise UserError(f"{root}: is a file, not a folder; give the noise folder (with noise/, music/ and "
                        f"optionally speech/ in it)")
    if not root.is_dir():
        raise UserError(f"{root}: MUSAN folder is missing (expected noise/, music/ and optionally speech/ in it)")
    if not (root / "noise").is_dir() and (root / "musan" / "noise").is_dir():
        return root / "musan"
    return root


def prepare_musan(root: Path, test_fraction: float = 0.3, seed: int = 0) -> dict[str, NoiseSet]:
    """Find MUSAN's kinds under ``root`` and split each into disjoint train/test pools.

    Returns ``{"noise": NoiseSet, "music": NoiseSet[, "speech": NoiseSet]}``; see the
    module docstring for the layout, split rule and errors.
    """
    _check_fraction(test_fraction)
    root = _resolve_root(root).resolve()
    sets: dict[str, NoiseSet] = {}
    for kind in KINDS:
        folder = root / kind
        if not folder.is_dir():
            if kind in REQUIRED_KINDS:
                raise UserError(f"{folder}: MUSAN {kind} folder is missing")
            continue
        files = list_audio(folder)
        if not files:
            raise UserError(f"{folder}: no audio files (.wav or .flac) in the MUSAN {kind} folder")
        # canonical order: path relative to root, so the split does not depend on where root lives
        files.sort(key=lambda p: p.relative_to(root).as_posix())
        sets[kind] = split_pool(kind, [str(p) for p in files], test_fraction, seed, source=str(folder))
    return sets


# ---------------------------------------------------------------- storage
def _json_path(path: Path) -> Path:
    path = Path(path)
    return path / MUSAN_JSON if path.suffix.lower() != ".json" else path


def save_musan(sets: dict[str, NoiseSet], path: Path, seed: int | None = None,
               test_fraction: float | None = None, root: Path | str | None = None) -> Path:
    """Write the split to ``path`` (a ``.json`` file, or a folder -> ``folder/musan.json``)."""
    out = _json_path(path)
    data = {"version": _FORMAT_VERSION, "root": None if root is None else str(root),
            "seed": seed, "test_fraction": test_fraction,
            "sets": {k: {"train": list(s.train), "test": list(s.test)} for k, s in sets.items()}}
    atomic_write_text(out, json.dumps(data, indent=1))
    return out


def _read_musan_json(path: Path) -> tuple[dict, dict[str, NoiseSet]]:
    path = _json_path(path)
    if not path.is_file():
        raise UserError(f"{path}: MUSAN split file is missing; prepare it first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        raw_sets = data["sets"]
        sets = {k: NoiseSet(k, [str(f) for f in v["train"]], [str(f) for f in v["test"]])
                for k, v in raw_sets.items()}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise UserError(f"{path}: not a valid MUSAN split file ({type(e).__name__}: {e})") from None
    for kind in REQUIRED_KINDS:
        if kind not in sets:
            raise UserError(f"{path}: MUSAN split has no {kind!r} pools")
    for s in sets.values():
        if not s.train or not s.test:
            raise UserError(f"{path}: MUSAN {s.kind} has an empty train or test pool")
        both = set(s.train) & set(s.test)
        if both:
            raise UserError(f"{path}: {sorted(both)[0]} is in both the train and test pool of MUSAN {s.kind}")
    return data, sets


def load_musan(path: Path) -> dict[str, NoiseSet]:
    """Read a split written by :func:`save_musan` (file or folder holding ``musan.json``)."""
    return _read_musan_json(path)[1]


def load_or_prepare_musan(root: Path, out: Path, test_fraction: float = 0.3,
                          seed: int = 0) -> dict[str, NoiseSet]:
    """Reuse ``out`` (``musan.json`` or its folder) when it exists, else prepare and save it.

    An existing split made with another seed or test fraction is refused rather than
    silently replaced: the pools must stay fixed across experiments.
    """
    path = _json_path(out)
    if path.is_file():
        data, sets = _read_musan_json(path)
        if data.get("seed") is not None and data.get("seed") != seed or \
                data.get("test_fraction") is not None and data.get("test_fraction") != test_fraction:
            raise UserError(f"{path}: MUSAN split was made with seed {data.get('seed')} and test fraction "
                            f"{data.get('test_fraction')}, not {seed} and {test_fraction}; "
                            f"delete it to re-split")
        return sets
    sets = prepare_musan(root, test_fraction, seed)
    save_musan(sets, path, seed=seed, test_fraction=test_fraction, root=_resolve_root(root).resolve())
    return sets


def summary(sets: dict[str, NoiseSet]) -> str:
    """One line: ``MUSAN: noise 88 train / 37 test, music ...``."""
    parts = [f"{k} {len(s.train)} train / {len(s.test)} test" for k, s in sets.items()]
    return "MUSAN: " + ", ".join(parts)


def noise_split_for(root: Path, corpus_dir: Path) -> tuple[str, dict[str, NoiseSet]]:
    """The fixed train/test pools of noise corpus ``root``, stored beside a prepared corpus.

    Returns a short key naming this noise corpus and its pools' clips (used in feature-cache
    condition names, so two noise corpora, or one whose clips changed, never share cached noisy
    features) and its pools.
    """
    resolved = _resolve_root(Path(root)).resolve()
    key = f"{resolved.name}-{hashlib.sha1(str(resolved).encode()).hexdigest()[:6]}"
    folder = Path(corpus_dir) / "noise" / key
    sets = load_or_prepare_musan(resolved, folder / "musan.json")
    return f"{key}-{pools_fingerprint(sets, folder / CLIP_HASHES)}", sets


#: Beside musan.json: each clip's content hash by (size, mtime), so a copy of the same clips
#: (a restored or re-synced folder: new mtimes) keeps its cache names without re-reading much.
CLIP_HASHES = "clip-hashes.json"


def pools_fingerprint(sets: dict[str, NoiseSet], memo: Path | None = None) -> str:
    """Six hex digits naming the pools' clips by name and content: a clip added, replaced or
    moved between pools gives noisy features a new cache folder instead of stale ones, while
    the same audio with new file times keeps its folder. ``memo`` stores each clip's hash by
    (size, mtime) so only changed files are read again."""
    known: dict = {}
    if memo is not None and memo.is_file():
        try:
            known = json.loads(memo.read_text())
        except ValueError:
            known = {}  # a damaged memo only costs hashing again
    fresh, h = {}, hashlib.sha1()
    for kind in sorted(sets):
        for pool in ("train", "test"):
            for path in sorted(getattr(sets[kind], pool)):
                fresh[path] = _clip_hash(Path(path), known.get(path))
                h.update(f"{kind}|{pool}|{Path(path).name}|{fresh[path][2]}\n".encode())
    if memo is not None and fresh != known:
        atomic_write_text(memo, json.dumps(fresh))
    return h.hexdigest()[:6]


def _clip_hash(path: Path, known: list | None) -> list:
    """[size, mtime_ns, sha1 of the bytes] of one clip, reusing ``known`` when size and mtime match."""
    if not path.exists():
        return [None, None, "missing"]
    st = path.stat()
    if known and known[:2] == [st.st_size, st.st_mtime_ns]:
        return list(known)
    return [st.st_size, st.st_mtime_ns, hashlib.sha1(path.read_bytes()).hexdigest()]
