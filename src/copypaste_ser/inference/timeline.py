"""Outputs of ``predict``: rows as JSON lines or CSV (written as they are made), and a timeline
plot (PNG) of the class probabilities over a recording."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from copypaste_ser.errors import UserError
from copypaste_ser.files.atomic import atomic_path, create_beside

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}
BASE_COLUMNS = ["file", "level", "start", "end", "speech", "voiced_seconds", "emotion"]


class RowWriter:
    """Appends window and file rows to ``path`` (.jsonl or .csv) one by one, so a long
    recording's rows are on disk as they come and memory does not grow with them."""

    def __init__(self, path: str | Path, labels: Sequence[str]):
        self.path = Path(path)
        self.format = FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise UserError(f"--out: {self.path}: the file name must end in .jsonl or .csv")
        self.labels = list(labels)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # rows go to a temporary file renamed into place by close(): a failure keeps what was there
        self._tmp = create_beside(self.path, ".tmp")
        self._f: IO[str] = open(self._tmp, "w", newline="")
        self._csv = None
        if self.format == "csv":
            self._csv = csv.writer(self._f)
            self._csv.writerow(BASE_COLUMNS + [f"p_{lab}" for lab in self.labels])

    def write(self, row: dict) -> None:
        if self._csv is None:
            self._f.write(json.dumps(row) + "\n")
            return
        probs = row.get("probs") or {}
        # repr of a float is its full precision: nothing is rounded away
        self._csv.writerow([row.get(c) if row.get(c) is not None else "" for c in BASE_COLUMNS]
                           + [repr(probs[lab]) if lab in probs else "" for lab in self.labels])

    def close(self, keep: bool = True) -> None:
        """Close; ``keep``: rename the rows into place, else drop them (the old file stays)."""
        self._f.close()
        if keep:
            os.replace(self._tmp, self.path)
        elif os.path.exists(self._tmp):
            os.remove(self._tmp)

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(keep=exc_type is None)


def plot_paths(plot: Path, files: Sequence[str | Path]) -> list[Path]:
    """``--plot``: the PNG itself for one file; for several, a folder of ``<stem>.png``, or of
    ``<sub>__<folder>__<stem>.png`` (the path below the files' common folder) where stems repeat."""
    if len(files) == 1 and plot.suffix.lower() == ".png":
        return [plot]
    paths = [Path(f) for f in files]
    stems = [p.stem for p in paths]
    if len(set(stems)) < len(stems):
        common = Path(os.path.commonpath([p.parent.resolve() for p in paths]))
        stems = ["__".join(p.resolve().with_suffix("").relative_to(common).parts) for p in paths]
    return [plot / f"{stem}.png" for stem in stems]


def plot_timeline(rows: Sequence[dict], labels: Sequence[str], path: str | Path, title: str = "",
                  summary: dict | None = None) -> Path:
    """Class probabilities at each window's centre over time; windows without speech shaded."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    end = max((r["end"] for r in rows), default=0.0)
    unit, scale = ("h", 3600.0) if end > 3 * 3600 else ("min", 60.0) if end > 600 else ("s", 1.0)
    fig, ax = plt.subplots(figsize=(12, 4), dpi=100)
    for lab in labels:
        xs, ys = [], []
        for r in rows:  # NaN between voiced stretches: no line drawn through silence
            xs.append((r["start"] + r["end"]) / 2 / scale)
            ys.append(r["probs"][lab] if r["speech"] else math.nan)
        ax.plot(xs, ys, label=lab, linewidth=1.2, marker="." if len(rows) < 200 else None)
    for r in rows:
        if not r["speech"]:
            ax.axvspan(r["start"] / scale, r["end"] / scale, color="0.9", linewidth=0)
    ax.set_xlim(0, max(end / scale, 1e-9))
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("probability")
    heading = title
    if summary is not None:
        heading += f"  -  file: {summary['emotion'] or 'no speech'}"
    ax.set_title(heading + "  (grey: no speech)", fontsize=10)
    ax.legend(loc="upper right", ncol=len(labels), fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png.tmp") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
