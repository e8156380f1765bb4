"""Seed ensembles: the seeds' probabilities averaged per utterance, scored as one model."""

import csv
import json

import numpy as np
import pytest
import yaml
from sklearn.metrics import f1_score

from copypaste_ser.errors import UserError
from copypaste_ser.experiments.grid import run_grid
from copypaste_ser.experiments.grid_config import GridConfig
from copypaste_ser.experiments.report import write_report
from copypaste_ser.experiments.seed_ensemble import (
    SUFFIX,
    ensemble_grid,
    ensemble_score,
    run_probabilities,
    write_ensemble,
)

LABELS = ["neutral", "angry"]


def _run(grid, fold, seed, clean, noisy=None):
    """A finished run folder: scores.json with clean predictions, a 10 dB test in eval/."""
    run = grid / fold / "resemblyzer-attention" / "clean" / "n-cp" / f"seed-{seed}"
    run.mkdir(parents=True)
    preds = [{"id": i, "true": t, "pred": LABELS[int(np.argmax(p))], "probs": p} for i, (t, p) in clean.items()]
    scores = {"clean": {"labels": LABELS, "predictions": preds}}
    if noisy is not None:
        scores["10dB"] = {"labels": LABELS, "condition": "noise-x-10dB"}
        (run / "eval" / "noise-x-10dB").mkdir(parents=True)
        (run / "eval" / "noise-x-10dB" / "predictions.jsonl").write_text("".join(
            json.dumps({"id": i, "true": t, "pred": "", "probs": p}) + "\n" for i, (t, p) in noisy.items()))
    (run / "scores.json").write_text(json.dumps(scores))
    return run


def test_the_ensemble_argmaxes_the_mean_probability_not_a_vote():
    a = {"u1": ("angry", [0.6, 0.4]), "u2": ("neutral", [0.9, 0.1]), "u3": ("angry", [0.45, 0.55])}
    b = {"u1": ("angry", [0.3, 0.7]), "u2": ("neutral", [0.4, 0.6]), "u3": ("angry", [0.8, 0.2])}
    m = ensemble_score([a, b], LABELS)
    # u1: mean 0.45/0.55 -> angry (seed a alone said neutral); u2 0.65/0.35 -> neutral; u3 0.625 -> neutral
    assert [p["pred"] for p in m["predictions"]] == ["angry", "neutral", "neutral"]
    assert m["weighted_f1"] == pytest.approx(f1_score([1, 0, 1], [1, 0, 0], average="weighted"))
    assert m["predictions"][0]["probs"] == [0.45, 0.55]
    # only the utterances every member scored
    assert ensemble_score([a, {"u1": b["u1"]}], LABELS)["n"] == 1


def test_grid_ensembles_each_fold_and_test_and_the_report_merges_them(tmp_path):
    grid = tmp_path / "grid"
    for fold, flip in (("loso-1", 0.7), ("loso-2", 0.2)):
        for seed, p in ((0, flip), (1, 0.6), (2, 0.4)):
            clean = {"x": ("angry", [1 - p, p]), "y": ("neutral", [0.8, 0.2])}
            _run(grid, fold, seed, clean, noisy={"x": ("angry", [0.5 - p / 2, 0.5 + p / 2])})
    rows, preds = ensemble_grid(grid)
    ens = {(r["fold"], r["test"]): r for r in rows if r["init"] == "resemblyzer-attention" + SUFFIX}
    assert set(ens) == {(f, t) for f in ("loso-1", "loso-2") for t in ("clean", "10dB")}
    assert {r["seed"] for r in ens.values()} == {"0+1+2"}
    # loso-1: P(angry | x) = mean(0.7, 0.6, 0.4) = 0.567 -> right; loso-2: mean(0.2, 0.6, 0.4) = 0.4 -> wrong
    assert ens[("loso-1", "clean")]["weighted_f1"] == 1.0
    assert ens[("loso-2", "clean")]["weighted_f1"] == pytest.approx(f1_score([1, 0], [0, 0], average="weighted"))
    members = [r for r in rows if r["init"] == "resemblyzer-attention" and r["fold"] == "loso-2" and r["test"] == "clean"]
    assert sorted(r["weighted_f1"] for r in members) == pytest.approx(sorted([1.0, 1 / 3, 1 / 3]))
    assert preds["loso-2|resemblyzer-attention" + SUFFIX + "|clean|n-cp|0+1+2|clean"] == {"x": ["angry", "neutral"],
                                                                                         "y": ["neutral", "neutral"]}
    summary = write_ensemble(grid, tmp_path / "ens", seeds=["0", "1"])
    clean = next(s for s in summary if s["test"] == "clean")
    # seeds 0-1 only: loso-1 members 1.0 / 1.0, ensemble 1.0; loso-2 members 1/3 and 1.0, ensemble (0.4) wrong
    assert clean["members"] == pytest.approx(100 * (1 + 1 + 1 / 3 + 1) / 4)
    assert clean["ensemble"] == pytest.approx(100 * (1 + 1 / 3) / 2) and clean["folds_better"] == 0
    with pytest.raises(UserError, match=r"results.csv: exists; pass --force"):
        write_ensemble(grid, tmp_path / "ens")
    written = list(csv.DictReader(open(tmp_path / "ens" / "results.csv")))
    assert {r["init"] for r in written} == {"resemblyzer-attention" + SUFFIX} and len(written) == 4
    text = write_report([tmp_path / "ens" / "results.csv"], tmp_path / "report", "ensembles").read_text()
    assert "resemblyzer-attention+seed-ensemble" in text
    assert "\n0 runs:" in text  # an ensemble is no trained run of its own


def test_refusals_say_what_to_do(tmp_path):
    with pytest.raises(UserError, match=r"no such grid folder"):
        ensemble_grid(tmp_path / "nothing")
    grid = tmp_path / "grid"
    _run(grid, "loso-1", 0, {"x": ("angry", [0.2, 0.8])})
    with pytest.raises(UserError, match=r"no fold and cell has two finished seeds"):
        ensemble_grid(grid)
    _run(grid, "loso-1", 1, {"x": ("angry", [0.2, 0.8])})
    with pytest.raises(UserError, match=r"not scored on its dev speakers; run `copypaste-ser evaluate .*seed-0 --split dev`"):
        run_probabilities(grid / "loso-1/resemblyzer-attention/clean/n-cp/seed-0", "dev")
    with pytest.raises(UserError, match=r"--split: must be one of test, dev"):
        ensemble_grid(grid, split="train")


def test_dev_split_scores_real_runs_on_their_dev_speakers(tmp_path, synthetic_corpus):
    raw = dict(data=str(synthetic_corpus), out=str(tmp_path / "grid"), preset="tiny",
               train={"epochs": 1, "threads": 1}, copypaste=["none"], training_data=["clean"],
               seeds=[0, 1], snrs=[], workers=1)
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(raw))
    run_grid(GridConfig.load(tmp_path / "grid.yaml"), progress=False)
    rows, _ = ensemble_grid(tmp_path / "grid", split="dev")
    assert {r["test"] for r in rows} == {"dev"}
    seed0 = next(tmp_path.glob("grid/*/*/*/*/seed-0"))
    stored = json.loads((seed0 / "eval" / "dev-clean" / "metrics.json").read_text())
    member = next(r for r in rows if r["seed"] == "0")
    assert stored["split"] == "dev" and member["weighted_f1"] == pytest.approx(stored["weighted_f1"], abs=1e-6)
    assert len([r for r in rows if r["init"].endswith(SUFFIX)]) == 1
