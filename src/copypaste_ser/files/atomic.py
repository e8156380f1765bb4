"""Atomic file writes: the one way this package replaces a file.

Every writer (text, CSV, checkpoints, feature arrays, ONNX files, downloads) writes to a
temporary file in the destination's folder and renames it into place, so a crash or an
error never leaves half a file under the real name. The temporary name is
``.<name>.<random><suffix>``; with the default ``.tmp`` suffix, rundir.py recognises a
crash's leftover in a run folder and removes it.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from copypaste_ser.errors import UserError


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed to ``path`` when the block ends
    without an exception, removed otherwise. The parent folder is created if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = create_beside(path, suffix)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as e:
        if e.errno in NO_ROOM:  # name the user's file and the fix, never the temporary name
            raise UserError(f"{path}: cannot write it ({e.strerror}); {NO_ROOM[e.errno]}") from None
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


#: errno of a write that failed for lack of room -> what the user can do about it
NO_ROOM = {errno.ENOSPC: "the disk is full; free some space and run the command again (a run resumes)",
           errno.EFBIG: "the file-size limit (ulimit -f) is too small; raise it and run the command again",
           errno.EDQUOT: "the disk quota is used up; free some space and run the command again"}


def create_beside(path: Path, suffix: str = ".tmp") -> str:
    """Create an empty, unique ``.<name>.<random><suffix>`` beside ``path``. Unlike mkstemp's
    owner-only 0600, mode 0666 lets the umask decide, so the result gets what open() gives."""
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def atomic_write_csv(path: str | Path, rows: list[dict]) -> None:
    """Rows as CSV, atomically; the columns are the union of the rows' keys, in first-seen order."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
