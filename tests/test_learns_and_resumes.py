"""Tests that fail when training is broken: the tiny preset learns the synthetic corpus, and
a run killed with SIGKILL and resumed ends exactly like a run that was never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from copypaste_ser.training.config import make_config
from copypaste_ser.training.loop import train

# Test weighted F1 of the tiny preset, 30 epochs, no CopyPaste, on the session corpus (48 test
# utterances of 4 balanced classes), seeds 0-5: 0.517 0.407 0.498 0.474 0.511 0.476. Chance is
# 0.25 (uniform guessing), 0.10 (one class for all); a broken label map or a model that does
# not train stays near those. 0.38 sits below the lowest seed and far above chance.
LEARNS_THRESHOLD = 0.38


def test_tiny_preset_learns_the_synthetic_corpus(synthetic_corpus, tmp_path):
    cfg = make_config("tiny", data=str(synthetic_corpus), epochs=30, threads=1, seed=0)
    metrics = train(cfg, tmp_path / "learn", progress=False)
    assert metrics["weighted_f1"] > LEARNS_THRESHOLD, metrics["weighted_f1"]
    history = [json.loads(x) for x in (tmp_path / "learn" / "history.jsonl").read_text().splitlines()]
    assert history[-1]["train_loss"] < 0.9 * history[0]["train_loss"]  # the loss came down


def _cmd(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "copypaste_ser", "train", "--data", str(data), "--out", str(out),
            "--preset", "tiny", "--epochs", "8", "--threads", "1", "--copypaste", "n-cp", "--quiet"]


def _finished(out: Path) -> tuple[dict, dict, dict, list[dict]]:
    """Weights of model.pt and last.pt, metrics and history without wall times."""
    model = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    last = torch.load(out / "last.pt", weights_only=True)["state_dict"]
    metrics = json.loads((out / "metrics.json").read_text())
    metrics.pop("train_seconds")
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    for h in history:
        h.pop("seconds")
    return model, last, metrics, history


def test_sigkilled_run_resumes_to_the_uninterrupted_result(synthetic_corpus, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_cmd(synthetic_corpus, straight), check=True, env=env, capture_output=True, timeout=600)

    proc = subprocess.Popen(_cmd(synthetic_corpus, killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    history = killed / "history.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if history.is_file() and len(history.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(history.read_text().splitlines())
    assert proc.returncode == -signal.SIGKILL and 3 <= done < 8, "not killed mid-training"
    assert json.loads((killed / "run.json").read_text())["status"] != "complete"

    subprocess.run(_cmd(synthetic_corpus, killed), check=True, env=env, capture_output=True, timeout=600)
    a, b = _finished(straight), _finished(killed)
    for key in a[0]:
        assert torch.equal(a[0][key], b[0][key]), f"model.pt {key}"
        assert torch.equal(a[1][key], b[1][key]), f"last.pt {key}"
    assert a[2] == b[2]  # metrics.json, every score and the confusion matrix
    assert a[3] == b[3]  # the history, epoch by epoch
