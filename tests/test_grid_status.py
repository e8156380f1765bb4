"""grid --status: each cell's state read from its run folder, and the training time left."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import yaml
from typer.testing import CliRunner

from copypaste_ser.cli.main import app
from copypaste_ser.experiments.grid_config import Cell, GridConfig
from copypaste_ser.experiments.grid_status import format_status, grid_status, seconds_left
from copypaste_ser.training.rundir import LOCK


def _config(tmp_path, synthetic_corpus):
    raw = dict(data=str(synthetic_corpus), out=str(tmp_path / "grid"), preset="tiny",
               train={"epochs": 4, "threads": 1}, copypaste=["none", "n-cp"], training_data=["clean"],
               seeds=[0, 1], snrs=[], workers=2)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run_folder(grid: GridConfig, scheme: str, seed: int, status: str, epoch_seconds: list[float],
                scored: bool = False):
    run = Cell("default", "scratch", "clean", scheme, seed).path(Path(grid.out))
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": status}))
    (run / "history.jsonl").write_text("".join(json.dumps({"epoch": i + 1, "seconds": s}) + "\n"
                                               for i, s in enumerate(epoch_seconds)))
    if status == "complete":
        (run / "metrics.json").write_text(json.dumps({"weighted_f1": 0.625}))
    if scored:
        (run / "scores.json").write_text(json.dumps({"clean": {"weighted_f1": 0.625, "probe": None}}))
    return run


def test_states_epochs_and_time_left(tmp_path, synthetic_corpus):
    grid = GridConfig.load(_config(tmp_path, synthetic_corpus))
    _run_folder(grid, "none", 0, "complete", [5.0, 5.0, 5.0, 5.0], scored=True)
    cut = _run_folder(grid, "n-cp", 0, "running", [10.0, 20.0])  # killed: run.json never updated
    states = {(s.cell.copypaste, s.cell.seed): s for s in grid_status(grid)}
    assert {k: s.state for k, s in states.items()} == {
        ("none", 0): "done", ("none", 1): "not started", ("n-cp", 0): "interrupted", ("n-cp", 1): "not started"}
    assert states[("none", 0)].weighted_f1 == 0.625
    assert (states[("n-cp", 0)].epochs_done, states[("n-cp", 0)].epochs) == (2, 4)
    assert states[("n-cp", 0)].seconds_per_epoch == 15.0
    # left: none seed 1 at its scheme's 5 s x 4, n-cp seed 0 at its own 15 s x 2, n-cp seed 1 at
    # its scheme's 15 s x 4; over two workers
    assert seconds_left(list(states.values()), workers=2) == (20 + 30 + 60) / 2

    fd = os.open(cut / LOCK, os.O_RDWR | os.O_CREAT)
    try:  # a live process holds the lock: the same folder reads as running
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert {s.cell.copypaste: s.state for s in grid_status(grid) if s.cell.seed == 0}["n-cp"] == "running"
    finally:
        os.close(fd)

    (cut / "run.json").write_text(json.dumps({"status": "complete"}))  # trained, not yet scored
    states = grid_status(grid)
    assert [s.state for s in states if s.cell.copypaste == "n-cp" and s.cell.seed == 0] == ["scoring"]
    text = format_status(states, 2)
    assert "4 runs: 1 done, 2 not started, 1 scoring" in text


def test_time_left_counts_the_runs_running_in_other_processes(tmp_path, synthetic_corpus):
    """Two slices of a one-worker grid, each run by its own process: the time left is shared by two."""
    grid = GridConfig.load(_config(tmp_path, synthetic_corpus))
    runs = [_run_folder(grid, "none", seed, "running", [6.0, 6.0]) for seed in (0, 1)]
    fds = [os.open(run / LOCK, os.O_RDWR | os.O_CREAT) for run in runs]
    try:
        for fd in fds:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        states = grid_status(grid)
        assert [s.state for s in states if s.cell.copypaste == "none"] == ["running", "running"]
        text = format_status(states, 1)
    finally:
        for fd in fds:
            os.close(fd)
    # none: 2 epochs left x 6 s, twice; n-cp not timed: the grid's 6 s x 4 epochs, twice; over two
    assert "left: about 0 min of training with 2 worker(s)" in text
    assert seconds_left(states, 2) == (12 + 12 + 24 + 24) / 2
    assert "with 3 worker(s)" in format_status(states, 3)  # more workers configured than running


def test_time_left_unknown_before_any_epoch(tmp_path, synthetic_corpus):
    grid = GridConfig.load(_config(tmp_path, synthetic_corpus))
    states = grid_status(grid)
    assert seconds_left(states) is None
    assert "unknown until a run has timed an epoch" in format_status(states)


def test_cli_status_writes_nothing(tmp_path, synthetic_corpus):
    config = _config(tmp_path, synthetic_corpus)
    result = CliRunner().invoke(app, ["grid", str(config), "--status", "--copypaste", "n-cp"])
    assert result.exit_code == 0, result.output
    assert "2 runs: 2 not started" in result.output  # the slice only
    assert not (tmp_path / "grid").exists()
