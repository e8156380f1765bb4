"""The command line: every subcommand has help; user errors are one line, not a traceback."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

SUBCOMMANDS = ["download", "prepare", "train", "evaluate", "predict", "demo", "grid", "report", "pretrain-speaker",
               "export"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "copypaste_ser", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_help(cmd):
    proc = _cli(cmd, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout


@pytest.mark.parametrize("args, expected", [
    (["prepare", "emodb", "--root", "/nonexistent/emodb", "--out", "/tmp/x"], "/nonexistent/emodb"),
    (["prepare", "klingon", "--root", "/tmp", "--out", "/tmp/x"], "unknown corpus 'klingon'"),
    (["train", "--data", "/nonexistent/data", "--out", "/tmp/x"], "/nonexistent/data/manifest.jsonl: missing"),
    (["predict", "/nonexistent/run", __file__], "/nonexistent/run: no such run directory or model file"),
    (["predict", "/nonexistent/run", "a.wav"], "a.wav: audio file is missing"),  # files first, then the model
    (["download", "crema-d", "--out", "/tmp/x"], "crema-d"),
])
def test_user_errors_are_one_line(args, expected):
    proc = _cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr


def test_prepare_refuses_to_overwrite(synthetic_corpus):
    root = synthetic_corpus.parent / "audio"
    proc = _cli("prepare", "synthetic", "--root", str(root), "--out", str(synthetic_corpus))
    assert proc.returncode == 2 and "pass --force" in proc.stderr


def test_sigterm_stops_a_parallel_grid_like_ctrl_c(tmp_path, synthetic_corpus):
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(dict(
        data=str(synthetic_corpus), out=str(tmp_path / "grid"), preset="tiny", train={"epochs": 200, "threads": 1},
        copypaste=["none", "n-cp"], training_data=["clean"], seeds=[0, 1], snrs=[], workers=2)))
    proc = subprocess.Popen([sys.executable, "-m", "copypaste_ser", "grid", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300  # a loaded machine may take minutes to start two workers
    while not list((tmp_path / "grid").rglob("history.jsonl")):  # workers are training
        if proc.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):  # never leave a 200-epoch grid and its workers behind
                os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"no worker started training within 300 s: {proc.communicate()[1]}")
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted: run the same command again to resume" in err and "leaked" not in err, err
    log = (tmp_path / "grid" / "grid-log.jsonl").read_text().splitlines()
    assert [json.loads(x)["status"] for x in log] == ["interrupted"]


def test_a_warning_is_one_line_without_source_code():
    code = ("import sys, warnings\nfrom copypaste_ser.cli import main as cli\n"
            "cli.app = lambda: warnings.warn('noise/a.flac: noise clip is silent; skipped')\n"
            "sys.argv = ['copypaste-ser']\ncli.main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stderr == "warning: noise/a.flac: noise clip is silent; skipped\n"
