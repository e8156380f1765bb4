"""Run folders: which folders the tool made, what ``--force`` may delete in them, and the lock.

A folder the tool makes for ``train`` (kind "run"), for several seeds (kind "seeds": one run
per ``seed-N``), for ``train --fold PATTERN`` (kind "folds": one seeds folder per fold) or for
``demo`` (kind "demo") carries a marker file, ``.copypaste-ser-run``,
holding ``{"kind": ..., "created": ...}``. ``--force`` replaces only such a folder (file names
prove nothing: a user's folder may hold a config.yaml or model.pt of its own) and deletes only
the files the tool writes there; a user's own files stay. A refusal writes nothing. It never replaces ``/``, the home folder, the current folder
or one of its parents, or a folder holding the corpus. While a process trains a run it holds
an exclusive lock on ``.copypaste-ser.lock`` in the run folder, so two processes never train
the same run.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from copypaste_ser.data.manifest import fold_test_fingerprint, load_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.files.atomic import atomic_write_text
from copypaste_ser.training.config import TrainConfig, normalized
from copypaste_ser.validation import child_path

MARKER = ".copypaste-ser-run"
LOCK = ".copypaste-ser.lock"
KINDS = ("run", "seeds", "folds", "grid", "demo")
# what the tool writes in a run folder (train.py, evaluate.py, the grid's scores.json)
RUN_FILES = frozenset({"config.yaml", "history.jsonl", "last.pt", "model.pt", "metrics.json", "confusion.png",
                       "curves.png", "run.json", "scores.json"})
EVAL_FILES = frozenset({"predictions.jsonl", "metrics.json", "confusion.png"})  # eval/<condition>/
SEED_DIR = re.compile(r"seed-\d+")
#: Config fields that never change the values a run computes (how noisy copies are obtained):
#: a run made with another value resumes, and counts as the same run.
VALUE_NEUTRAL = ("noise_copies",)


def evaluation_dir(run_dir: Path, name: str) -> Path:
    """Where ``evaluate`` writes one test's metrics.json, predictions and confusion plot
    (``name``: the condition, prefixed by the split where it is not the test; a model file
    given instead of a run folder gets a ``<file>.eval`` folder beside it)."""
    return run_dir / "eval" / name if run_dir.is_dir() else Path(str(run_dir) + ".eval") / name


def grid_run_dir(out: Path, fold: str, init: str, training_data: str, copypaste: str, seed: int | str) -> Path:
    """A grid's run folder of one cell under the grid's ``out``: ``fold/init/data/scheme/seed-N``
    (``init`` as results name it, suffixes included); each name must stay one folder inside."""
    path = Path(out)
    for name, what in ((fold, "fold name"), (init, "init name"), (training_data, "training data name"),
                       (copypaste, "CopyPaste scheme name"), (f"seed-{seed}", "seed")):
        path = child_path(path, name, what)
    return path


def run_status(run_dir: str | Path) -> str:
    f = Path(run_dir) / "run.json"
    return json.loads(f.read_text()).get("status", "unknown") if f.is_file() else "new"


def mark_stopped(run_dir: str | Path, error: BaseException) -> None:
    """After a training that raised: a run.json saying "running" becomes "failed" (or
    "interrupted" for Ctrl-C / kill) with the error, if this process holds the run's lock
    (the lock file holds its pid), so another process's run is never touched."""
    run_dir = Path(run_dir)
    try:
        if (run_dir / LOCK).read_text().strip() != str(os.getpid()) or run_status(run_dir) != "running":
            return
        status = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return
    stopped = isinstance(error, (KeyboardInterrupt, SystemExit))
    status.update(status="interrupted" if stopped else "failed", error=str(error) or type(error).__name__)
    with contextlib.suppress(OSError):
        atomic_write_text(run_dir / "run.json", json.dumps(status, indent=1))


def folder_kind(folder: str | Path) -> str | None:
    """"run", "seeds" or "demo" for a folder the tool made; "" for a missing or empty folder;
    None for anything else (a user's folder)."""
    folder = Path(folder)
    # a lock and temp files only: a run being created (a trainer then refuses on the lock) or cut short
    if not folder.is_dir() or all(c.name == LOCK or _is_temp(c) for c in folder.iterdir()):
        return ""
    marker = folder / MARKER
    if marker.is_file():
        try:
            kind = json.loads(marker.read_text()).get("kind")
        except (ValueError, AttributeError, OSError):
            return None
        return kind if kind in KINDS else None
    # only the marker proves a folder is the tool's: files named like a run's may be a user's own
    return None


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the run's lock (non-blocking); a run another process trains is a one-line error."""
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise UserError(f"{run_dir}: cannot write in the run folder ({e.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            raise UserError(f"{run_dir}: is being trained by another process (pid {pid}); "
                            f"wait for it to finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def claim(out: str | Path, kind: str, force: bool, data: str | Path | None = None,
          held: contextlib.ExitStack | None = None) -> None:
    """Make ``out`` a ``kind`` folder of the tool: refuse a user's folder, lock it (kind "run",
    for as long as ``held`` is open), clear it with ``force``, mark it, drop stale temp files."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file, not a folder; choose another --out")
    if force and out.exists():
        _refuse_protected(out, data)
    found = folder_kind(out)
    if found is None:
        raise UserError(f"{out}: is not a copypaste-ser run folder; choose another --out")
    if found and found != kind:
        raise UserError(f"{out}: is a copypaste-ser {found} folder, not a {kind} folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out}: cannot create the folder ({e.strerror})") from None
    locked = kind == "run" and held is not None
    if locked:
        held.enter_context(run_lock(out))
        _remove_temp_files(out)  # no other process writes here now
    if force and found:
        clear(out, locked=locked)
    if not (out / MARKER).is_file():
        atomic_write_text(out / MARKER, json.dumps({"kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}))


def _refuse_protected(out: Path, data: str | Path | None) -> None:
    p = out.resolve()
    cwd = Path.cwd().resolve()
    reason = None
    if p == Path(p.anchor):
        reason = "the file system root"
    elif p == Path.home().resolve():
        reason = "your home folder"
    elif p == cwd or p in cwd.parents:
        reason = "the current folder or one of its parents"
    elif data is not None and (p == Path(data).resolve() or p in Path(data).resolve().parents):
        reason = f"the corpus folder {data} or holds it"
    if reason:
        raise UserError(f"{out}: is {reason}; --force never replaces it; choose another --out")


def clear(folder: Path, locked: bool = False) -> None:
    """Delete what the tool wrote in a run, seeds or demo folder, keeping every other file and
    the marker (the folder stays the tool's); ``locked``: this process holds the folder's run lock."""
    kind = folder_kind(folder)
    if kind == "run":
        with contextlib.nullcontext() if locked else run_lock(folder):
            for child in folder.iterdir():
                if child.name in RUN_FILES and child.is_file():
                    child.unlink()
                elif child.name == "eval" and child.is_dir():
                    for cond in child.iterdir():
                        _remove_files(cond, EVAL_FILES)
                    _remove_if_empty(child)
            _remove_temp_files(folder)
    elif kind == "seeds":
        for child in folder.iterdir():
            if SEED_DIR.fullmatch(child.name) and folder_kind(child) == "run":
                clear(child)
                _remove_if_unused(child)
        _remove_files(folder, {"summary.json"})
    elif kind == "folds":  # train --fold PATTERN: one seeds folder per fold, tables beside them
        for child in folder.iterdir():
            if child.is_dir() and folder_kind(child) == "seeds":
                clear(child)
                _remove_if_unused(child)
        _remove_files(folder, {"results.csv", "predictions.json", "summary.json"})
    elif kind == "demo":
        (folder / "synthetic-audio" / ".complete").unlink(missing_ok=True)  # regenerate the audio
        runs = folder / "runs"
        for child in runs.iterdir() if runs.is_dir() else ():
            if folder_kind(child) in ("run", "seeds"):
                clear(child)
                _remove_if_unused(child)
        _remove_if_empty(runs)


def _remove_files(folder: Path, names: set[str] | frozenset[str]) -> None:
    for name in names:
        if (folder / name).is_file():
            (folder / name).unlink()
    _remove_temp_files(folder)


def _is_temp(f: Path) -> bool:
    """A leftover of an atomic write cut short (atomic.atomic_path, which every writer uses)."""
    return f.name.startswith(".") and f.name.endswith(".tmp") and f.is_file()


def _remove_temp_files(folder: Path) -> None:
    for f in folder.iterdir() if folder.is_dir() else ():
        if _is_temp(f):
            f.unlink()


def _remove_if_unused(folder: Path) -> None:
    """Remove a cleared sub-run that holds none of the user's files."""
    if {c.name for c in folder.iterdir()} <= {MARKER, LOCK}:
        _remove_files(folder, {MARKER, LOCK})
        _remove_if_empty(folder)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def prepare_run_dir(out: str | Path, cfg: TrainConfig, force: bool, held: contextlib.ExitStack) -> bool:
    """Create or reopen the run folder ``out`` and lock it while ``held`` is open; True when an
    unfinished run of the same config is resumed."""
    out = Path(out)
    claim(out, "run", force, cfg.data, held)
    cfg_file = out / "config.yaml"
    if not cfg_file.is_file():
        atomic_write_text(cfg_file, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return False
    changed = config_changes(out, cfg, VALUE_NEUTRAL)
    if changed:
        raise UserError(f"{out}: holds a run with a different config ({', '.join(changed)}); "
                        f"pass --force to overwrite it or choose another --out")
    if run_status(out) == "complete":
        raise UserError(f"{out}: run is already complete; pass --force to train it again")
    return (out / "last.pt").is_file()


def config_changes(out: str | Path, cfg: TrainConfig, ignore: tuple[str, ...] = ()) -> list[str]:
    """How the run config in ``out`` differs from ``cfg`` ("epochs 3 -> 5", one per field,
    ``ignore`` left out); empty when it is the same or ``out`` holds none."""
    cfg_file = Path(out) / "config.yaml"
    if not cfg_file.is_file():
        return []
    old = yaml.safe_load(cfg_file.read_text())
    if not isinstance(old, dict):
        raise UserError(f"{cfg_file}: is not a run config; pass --force to train the run again")
    try:  # configs written before a field was added get its default
        old = normalized(old, str(cfg_file))
    except (UserError, TypeError):
        pass
    new = normalized(cfg.to_dict())  # both sides alike: width None is its preset's width
    keys = sorted(k for k in set(old) | set(new) if k not in ignore and old.get(k) != new.get(k))
    return [f"{k} {_short(old.get(k))} -> {_short(new.get(k))}" for k in keys]


def made_with(out: str | Path, cfg: TrainConfig) -> bool:
    """Whether the run in ``out`` was made with ``cfg`` as a resume judges it: fields added since it
    was written take their defaults, value-neutral ones (VALUE_NEUTRAL) are ignored."""
    return not config_changes(out, cfg, VALUE_NEUTRAL)


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def tested_elsewhere(run: Path, cfg: TrainConfig) -> bool:
    """Whether the finished run in ``run`` tested other utterances than ``cfg``'s fold holds now
    (its metrics.json's ``test_set``; runs made before that field are taken as they are)."""
    metrics = Path(run) / "metrics.json"
    tested = json.loads(metrics.read_text()).get("test_set") if metrics.is_file() else None
    if not tested:
        return False
    return tested != fold_fingerprint(cfg.data, cfg.fold)


def fold_fingerprint(data: str | Path, fold: str) -> str:
    """The ``test_set`` fingerprint of fold ``fold`` of the prepared corpus ``data`` as it is now."""
    data = Path(data).resolve()
    stamp = tuple(f.stat().st_mtime_ns for f in sorted(data.glob("*.json*")))  # a folder prepared again: read again
    return _fold_fingerprint(str(data), fold, stamp)


@functools.lru_cache(maxsize=64)
def _fold_fingerprint(data: str, fold: str, stamp: tuple) -> str:
    manifest, protocol = load_corpus(Path(data))
    return fold_test_fingerprint(manifest, protocol.fold(fold).test)
