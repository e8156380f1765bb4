"""`grid --launcher slurm` through submitit, on submitit's local executor (jobs as local
subprocesses): one array per invocation, finished runs skipped, interrupted runs resumed."""

import json

import pytest

pytest.importorskip("submitit")

from test_experiments import _grid, fake_musan  # noqa: F401 - the fixture is used by name

from copypaste_ser.errors import UserError
from copypaste_ser.experiments.grid import cell_done, run_grid
from copypaste_ser.experiments.grid_config import cells
from copypaste_ser.experiments.launchers import LocalLauncher, parse_options


def test_slurm_launcher_on_submitits_local_executor_runs_interrupts_and_resumes(
        tmp_path, synthetic_corpus, fake_musan, monkeypatch):  # noqa: F811
    import copypaste_ser.experiments.launchers as L
    grid = _grid(tmp_path, synthetic_corpus, fake_musan, training_data=["clean"], snrs=[], workers=2)
    out = tmp_path / "grid"
    monkeypatch.setattr(L.SubmititLauncher, "poll_seconds", 0.2)
    arrays = []
    real_map = L.SubmititLauncher.run

    def spy(self, fn, items, done):
        arrays.append(len(items))
        return real_map(self, fn, items, done)

    monkeypatch.setattr(L.SubmititLauncher, "run", spy)
    real_pause = L.SubmititLauncher._pause

    def ctrl_c_at_the_first_poll(self):
        # the array is submitted and no run can have finished yet (each job starts a Python
        # and imports torch first); waiting for a run to train raced on a loaded machine, where
        # both tiny runs could finish between two polls
        raise KeyboardInterrupt

    assert real_pause  # the real pause is what the later invocations use
    with monkeypatch.context() as m:
        m.setattr(L.SubmititLauncher, "_pause", ctrl_c_at_the_first_poll)
        with pytest.raises(KeyboardInterrupt):
            run_grid(grid, progress=False, launcher="submitit-local")
    assert arrays == [2]  # one array of one task per run
    assert not all(cell_done(c.path(out), grid.snrs) for c in cells(grid))
    run_grid(grid, progress=False, launcher="submitit-local")
    assert all(cell_done(c.path(out), grid.snrs) for c in cells(grid))
    assert list((out / "submitit").glob("*_log.out"))  # submitit's per-task logs live with the grid
    run_grid(grid, progress=False, launcher="submitit-local")
    assert 1 <= arrays[1] <= 2 and arrays[2] == 0  # the finished grid submits nothing
    log = [json.loads(x) for x in (out / "grid-log.jsonl").read_text().splitlines()]
    assert [e["status"] for e in log] == ["interrupted", "complete", "complete"]


def test_a_failing_job_is_raised_as_is_and_stops_the_others(tmp_path):
    with pytest.raises(UserError, match="boom 1"):
        LocalLauncher(2).run(_fail_on_one, [0, 1, 2], lambda item, result: None)


def _fail_on_one(item: int) -> int:
    if item == 1:
        raise UserError(f"boom {item}")
    return item


def test_launcher_options_are_checked():
    assert parse_options("slurm", ["gpus_per_node=1", "slurm_partition=gpu"]) == {
        "gpus_per_node": 1, "slurm_partition": "gpu"}
    with pytest.raises(UserError, match="KEY=VALUE"):
        parse_options("slurm", ["gpus"])
    with pytest.raises(UserError, match="--launcher must be one of local, slurm"):
        parse_options("pbs", [])
