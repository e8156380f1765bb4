"""A grid killed with `kill -9`: its workers die with it, the rerun completes each run once,
and grid-log.jsonl still gets the killed invocation's line."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import yaml

from copypaste_ser.experiments.grid_log import RUNNING, Invocation, log_killed


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    """Running (a zombie nobody has reaped yet counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_9_of_a_parallel_grid_leaves_no_worker_and_the_rerun_trains_each_epoch_once(
        tmp_path, synthetic_corpus):
    epochs = 40  # long enough that orphaned workers would still be training when checked
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(dict(
        data=str(synthetic_corpus), out=str(tmp_path / "grid"), preset="tiny",
        train={"epochs": epochs, "threads": 1}, copypaste=["none", "n-cp"], training_data=["clean"],
        seeds=[0], snrs=[], workers=2)))
    command = [sys.executable, "-m", "copypaste_ser", "grid", str(config)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300  # generous: a loaded machine starts workers slowly
    while not list((tmp_path / "grid").rglob("history.jsonl")):  # the workers are training
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [w for w in workers if _alive(w)]
    for w in left:  # do not leave them to the other tests
        os.kill(w, signal.SIGKILL)
    assert left == [], "grid workers outlived the killed grid"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=1200)  # 80 tiny epochs, 2 workers
    assert rerun.returncode == 0, rerun.stderr
    histories = sorted((tmp_path / "grid").rglob("history.jsonl"))
    assert len(histories) == 2
    for h in histories:
        assert [json.loads(x)["epoch"] for x in h.read_text().splitlines()] == list(range(1, epochs + 1)), h
    log = [json.loads(x) for x in (tmp_path / "grid" / "grid-log.jsonl").read_text().splitlines()]
    assert [e["status"] for e in log] == ["killed", "complete"]
    assert log[0]["workers"] == 2 and log[0]["seconds"] >= 0 and log[1]["runs_completed"] == 2
    assert not list((tmp_path / "grid" / RUNNING).iterdir())


def test_only_an_invocation_whose_process_is_gone_is_logged_as_killed(tmp_path):
    live = Invocation.start(tmp_path, 1, {"seeds": [0]}, completed=lambda: 0)
    assert log_killed(tmp_path) == []  # its lock is held: still running
    # what a killed process leaves: the record, with its lock released
    os.close(live._fd)
    assert [e["status"] for e in log_killed(tmp_path)] == ["killed"]
    assert not list((tmp_path / RUNNING).iterdir())
    live._stop.set()
    log = [json.loads(x) for x in (tmp_path / "grid-log.jsonl").read_text().splitlines()]
    assert [(e["status"], e["slice"]) for e in log] == [("killed", {"seeds": [0]})]
    fresh = Invocation.start(tmp_path, 2, {}, completed=lambda: 3)
    fresh.finish("complete")
    log = [json.loads(x) for x in (tmp_path / "grid-log.jsonl").read_text().splitlines()]
    assert [(e["status"], e["runs_completed"]) for e in log] == [("killed", 0), ("complete", 3)]
    # the machine each invocation ran on, to tell float-level differences apart
    assert log[1]["machine"]["numpy"] == numpy.__version__ and log[1]["machine"]["cores"] == os.cpu_count()


def test_the_machine_names_the_gpu_only_where_training_could_use_one(monkeypatch):
    import torch

    from copypaste_ser.experiments.grid_log import machine, machine_label

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu_only = machine()
    assert "gpu" not in cpu_only and ", GPU " not in machine_label({"machine": cpu_only})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "NVIDIA H200")
    with_gpu = machine()
    assert with_gpu["gpu"] == "NVIDIA H200" and with_gpu["cpu"] == cpu_only["cpu"]
    label = machine_label({"machine": with_gpu})
    assert label.startswith(f"{cpu_only['cpu']}, ") and f"{cpu_only['cores']} cores, GPU NVIDIA H200; numpy" in label
