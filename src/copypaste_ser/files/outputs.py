"""The output policy every command follows for the files it writes.

- An existing file is never replaced without ``--force``.
- ``--force`` replaces only a file the tool itself wrote: each folder the tool writes into keeps
  a record, ``.copypaste-ser-outputs.json``, of the files it wrote there and their SHA-256; a
  file not in the record, or changed since, is the user's and is refused even under ``--force``.
- Every check runs before the first write (:func:`check_outputs`), so a refusal writes
  nothing; writes go through atomic.py (temporary file, then rename), and the record is
  updated after them (:func:`record_outputs`).

Run folders have their own marker and lock (rundir.py); this module covers single files
(``predict --out``, ``--plot``, results tables, reports, prepared-corpus files).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from copypaste_ser.errors import UserError
from copypaste_ser.files.atomic import atomic_write_text

RECORD = ".copypaste-ser-outputs.json"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}


def tool_wrote(path: str | Path) -> bool:
    """True when ``path`` is a file the tool wrote and nobody changed since."""
    path = Path(path)
    recorded = _record(path.parent).get(path.name)
    try:
        return recorded is not None and path.is_file() and file_sha256(path) == recorded
    except OSError:
        return False


def check_output(path: str | Path, force: bool, option: str) -> Path:
    """Refuse to write ``path`` where the policy says so; one line naming the path and the fix."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; {option} names a file here; choose another {option}")
    if path.parent.exists() and not path.parent.is_dir():
        raise UserError(f"{path.parent}: is a file, not a folder; choose another {option}")
    if path.exists() or path.is_symlink():
        if not force:
            raise UserError(f"{path}: exists; pass --force to replace it or choose another {option}")
        if not tool_wrote(path):
            raise UserError(f"{path}: exists and was not written by copypaste-ser (or was changed since); "
                            f"--force replaces only the tool's own files; choose another {option}")
    return path


def check_outputs(paths: Iterable[str | Path], force: bool, option: str) -> list[Path]:
    """:func:`check_output` for each path, and no two outputs of one command on one path."""
    out: list[Path] = []
    seen: dict[Path, Path] = {}
    for p in paths:
        key = Path(p).absolute()
        if key in seen:
            raise UserError(f"{p}: two outputs of this command would share this file; "
                            f"give {option} a folder or distinct names")
        seen[key] = Path(p)
        out.append(check_output(p, force, option))
    return out


def record_outputs(paths: Iterable[str | Path]) -> None:
    """Note in each folder's record that the tool wrote these files (as they are now)."""
    by_folder: dict[Path, list[Path]] = {}
    for p in paths:
        by_folder.setdefault(Path(p).parent, []).append(Path(p))
    for folder, files in by_folder.items():
        record = _record(folder)
        record.update({f.name: file_sha256(f) for f in files if f.is_file()})
        atomic_write_text(folder / RECORD, json.dumps(record, indent=1, sort_keys=True))


__all__ = ["RECORD", "check_output", "check_outputs", "record_outputs", "tool_wrote", "file_sha256"]
