"""`copypaste-ser demo` (the README's main job) end to end, at one epoch and one seed."""

from __future__ import annotations

import json

import pytest

from copypaste_ser.experiments.demo import run_demo


@pytest.mark.slow
def test_demo_tabulates_its_runs_and_resumes_without_retraining(tmp_path, capsys):
    out = tmp_path / "demo-out"
    first = run_demo(out, epochs=1, seeds=(0,), schemes=("none", "n-cp"))
    printed = capsys.readouterr().out

    assert list(first) == ["none", "n-cp"]
    for scheme, cell in first.items():
        run = out / "runs" / scheme / "seed-0"
        metrics = json.loads((run / "metrics.json").read_text())
        assert cell["mean"] == pytest.approx(metrics["weighted_f1"])  # one seed: the mean is its score
        assert cell["std"] == 0.0
        probe = json.loads((run / "eval" / "clean" / "metrics.json").read_text())["probe"]
        assert cell["probe"] == (pytest.approx(probe["emotion_kept_concat"]), 0.0)
        assert f"| {scheme} | {100 * cell['mean']:.2f} +- 0.00 |" in printed
    delta = 100 * (first["n-cp"]["mean"] - first["none"]["mean"])
    assert f"| n-cp | {100 * first['n-cp']['mean']:.2f} +- 0.00 | {delta:+.2f} |" in printed

    models = {s: (out / "runs" / s / "seed-0" / "model.pt").stat().st_mtime_ns for s in first}
    again = run_demo(out, epochs=1, seeds=(0,), schemes=("none", "n-cp"))
    assert [again[s]["mean"] for s in again] == [first[s]["mean"] for s in first]
    assert {s: (out / "runs" / s / "seed-0" / "model.pt").stat().st_mtime_ns for s in again} == models
