"""`copypaste-ser demo` (the README's main job) end to end, at one epoch and one seed."""

from __future__ import annotations

import json
import os

import pytest

from copypaste_ser.experiments.demo import concat_probe_score, run_demo


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

    def stamps(name: str) -> dict:
        return {s: (out / "runs" / s / "seed-0" / name).stat().st_mtime_ns for s in first}

    models, probes = stamps("model.pt"), stamps("eval/clean/metrics.json")
    again = run_demo(out, epochs=1, seeds=(0,), schemes=("none", "n-cp"))
    assert again == first
    assert stamps("model.pt") == models  # nothing retrained
    assert stamps("eval/clean/metrics.json") == probes  # nor re-scored: the stored probe is read back


def test_demo_probe_is_measured_again_for_a_newer_model(tmp_path, monkeypatch):
    import copypaste_ser.evaluation.evaluate as evaluate

    run = tmp_path / "run"
    (run / "eval" / "clean").mkdir(parents=True)
    stored = run / "eval" / "clean" / "metrics.json"
    stored.write_text(json.dumps({"probe": {"emotion_kept_concat": 0.25}}))
    (run / "model.pt").write_bytes(b"")
    calls = []
    monkeypatch.setattr(evaluate, "evaluate_run", lambda r, **kw: calls.append(r) or
                        {"probe": {"emotion_kept_concat": 0.75}})
    os.utime(run / "model.pt", ns=(stored.stat().st_mtime_ns - 10**9,) * 2)
    assert concat_probe_score(run) == 0.25 and calls == []  # stored after the model: read back
    os.utime(run / "model.pt", ns=(stored.stat().st_mtime_ns + 10**9,) * 2)
    assert concat_probe_score(run) == 0.75 and calls == [run]  # model retrained since: measured
