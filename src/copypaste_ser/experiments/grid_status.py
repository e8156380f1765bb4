"""Where a grid stands: each cell's state, epochs done, seconds per epoch, and the time left.

Reads run folders only (never trains, never writes, never takes a lock from a live run):
``grid CONFIG --status`` prints it, for a grid running in another terminal or one to resume.
A cell is "done" when trained and scored on every test condition, "done elsewhere" when a
results.csv given with ``--done`` holds it (grid_done.py), "scoring" when trained but not yet
scored, "running" while a process holds its lock, and otherwise "interrupted", "failed" or
"not started". The time left is training time only: epochs left times the
cell's own seconds per epoch, or the mean of its scheme's other runs (the grid's for a
scheme not yet run), divided by the grid's workers, or by the runs running now where more
are (slices of one grid run by several processes, each with its own workers).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from copypaste_ser.experiments.grid import cell_done
from copypaste_ser.experiments.grid_config import Cell, GridConfig, cell_config, cells
from copypaste_ser.training.rundir import LOCK, run_status


@dataclass(frozen=True)
class CellState:
    cell: Cell
    path: Path
    state: str                        # done, done elsewhere, scoring, running, interrupted, failed, not started
    epochs_done: int
    epochs: int
    seconds_per_epoch: float | None   # this run's mean, None before its first epoch
    weighted_f1: float | None         # clean test, once trained


def is_locked(run: Path) -> bool:
    """A live process holds the run's lock (a probe: the lock is released at once if free)."""
    try:
        fd = os.open(run / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a probe's lock
    return False


def _history(run: Path) -> list[dict]:
    lines = []
    with contextlib.suppress(OSError):
        for line in (run / "history.jsonl").read_text().splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
    return lines


def cell_state(grid: GridConfig, cell: Cell, elsewhere: dict | None = None) -> CellState:
    """``elsewhere``: the cell's clean-test row from a ``--done`` file, if one holds it."""
    run = cell.path(Path(grid.out))
    epochs = cell_config(grid, cell).epochs
    history = _history(run)
    seconds = [float(h["seconds"]) for h in history if "seconds" in h]
    status = run_status(run)
    if cell_done(run, grid.snrs):
        state = "done"
    elif elsewhere is not None:
        state = "done elsewhere"
    elif is_locked(run):
        state = "running"
    elif status == "complete":
        state = "scoring"
    elif status in ("failed", "interrupted"):
        state = status
    elif history:  # killed: its run.json still says "running", but no process holds the lock
        state = "interrupted"
    else:
        state = "not started"
    f1 = float(elsewhere["weighted_f1"]) if state == "done elsewhere" else None
    with contextlib.suppress(OSError, ValueError, KeyError):
        f1 = float(json.loads((run / "metrics.json").read_text())["weighted_f1"])
    return CellState(cell, run, state, epochs if status == "complete" else len(history), epochs,
                     float(np.mean(seconds)) if seconds else None, f1)


def grid_status(grid: GridConfig, done_elsewhere: Mapping[Cell, dict] | None = None) -> list[CellState]:
    """The state of every cell of ``grid`` (or of the slice it was restricted to);
    ``done_elsewhere``: {cell: its clean-test row} of the cells finished on another machine
    (grid_done.py)."""
    return [cell_state(grid, c, (done_elsewhere or {}).get(c)) for c in cells(grid)]


def seconds_left(states: list[CellState], workers: int = 1) -> float | None:
    """Training seconds left over ``workers`` parallel runs; None when no run has timed an
    epoch yet. Runs without their own timing take their scheme's mean (else the grid's)."""
    timed = [s for s in states if s.seconds_per_epoch is not None]
    if not timed:
        return None
    overall = float(np.mean([s.seconds_per_epoch for s in timed]))
    total = 0.0
    for s in states:
        if s.state in ("done", "done elsewhere", "scoring"):
            continue
        same = [t.seconds_per_epoch for t in timed if t.cell.copypaste == s.cell.copypaste
                and t.cell.training_data == s.cell.training_data]
        per_epoch = s.seconds_per_epoch or (float(np.mean(same)) if same else overall)
        total += per_epoch * (s.epochs - s.epochs_done)
    return total / max(1, workers)


def effective_workers(states: list[CellState], workers: int = 1) -> int:
    """The grid's workers, or the runs that processes hold now where there are more."""
    return max(1, workers, sum(s.state == "running" for s in states))


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min"


def format_status(states: list[CellState], workers: int = 1) -> str:
    """A plain-text table of the cells and a summary line with the time left."""
    rows = [("fold", "init", "data", "scheme", "seed", "state", "epochs", "s/epoch", "test wF1")]
    for s in states:
        c = s.cell
        rows.append((c.fold, c.init_name, c.training_data, c.copypaste, str(c.seed), s.state,
                     "-" if s.state == "done elsewhere" else f"{s.epochs_done}/{s.epochs}",  # no local run
                     f"{s.seconds_per_epoch:.0f}" if s.seconds_per_epoch is not None else "-",
                     f"{100 * s.weighted_f1:.2f}" if s.weighted_f1 is not None else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    workers = effective_workers(states, workers)
    left = seconds_left(states, workers)
    summary = ", ".join(f"{n} {state}" for state, n in counts.items())
    eta = ("unknown until a run has timed an epoch" if left is None else
           f"about {_duration(left)} of training with {workers} worker(s), scoring not counted")
    return "\n".join(lines + ["", f"{len(states)} runs: {summary}; left: {eta}"])
