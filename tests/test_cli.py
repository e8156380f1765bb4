"""The command line: every subcommand has help; user errors are one line, not a traceback."""

import subprocess
import sys

import pytest

SUBCOMMANDS = ["download", "prepare", "train", "evaluate", "predict", "demo", "grid", "report", "pretrain-speaker"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "copypaste_ser.cli", *args], capture_output=True,
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
    (["predict", "/nonexistent/run", "a.wav"], "/nonexistent/run: no such run directory or model file"),
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
