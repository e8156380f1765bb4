"""Late fusion: a run's probabilities mixed with a linear probe fitted in the same fold."""

import csv
import json
from pathlib import Path

import pytest
import yaml
from sklearn.metrics import f1_score

from copypaste_ser.data.manifest import load_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.baselines import baseline_features, fit_in_fold
from copypaste_ser.experiments.grid_config import GridConfig
from copypaste_ser.experiments.probe_fusion import choose_weight, fuse_grid, mixed_score, write_fusion
from copypaste_ser.experiments.report import write_report

LABELS = ["neutral", "angry"]


def test_the_mixture_can_overturn_both_members():
    model = {"u1": ("angry", [0.55, 0.45]), "u2": ("neutral", [0.2, 0.8])}
    probe = {"u1": ("angry", [0.3, 0.7]), "u2": ("neutral", [0.9, 0.1])}
    # model alone: both wrong; w = 0.5: u1 0.425/0.575 -> angry, u2 0.55/0.45 -> neutral
    assert mixed_score(model, probe, 1.0, LABELS)["weighted_f1"] == 0.0
    assert [p["pred"] for p in mixed_score(model, probe, 0.5, LABELS)["predictions"]] == ["angry", "neutral"]
    # w = 0.75: u1 0.4875/0.5125 -> angry; u2 0.375/0.625 -> angry (wrong)
    m = mixed_score(model, probe, 0.75, LABELS)
    assert m["weighted_f1"] == pytest.approx(f1_score([1, 0], [1, 1], average="weighted"))
    with pytest.raises(UserError, match="share no scored utterance"):
        mixed_score(model, {"other": ("angry", [0.5, 0.5])}, 0.5, LABELS)


def test_dev_picks_the_weight_and_ties_keep_the_model():
    model = {"u1": ("angry", [0.55, 0.45]), "u2": ("neutral", [0.2, 0.8])}
    probe = {"u1": ("angry", [0.3, 0.7]), "u2": ("neutral", [0.9, 0.1])}
    # the probe alone and w = 0.25, 0.5 are all right: the largest of them is kept
    assert choose_weight(model, probe, LABELS) == (0.5, 1.0)
    same = {"u1": ("angry", [0.2, 0.8])}
    assert choose_weight(same, same, LABELS) == (1.0, 1.0)


def _grid(tmp_path, corpus) -> GridConfig:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"data": str(corpus), "out": str(tmp_path / "grid"), "snrs": [],
                                    "training_data": ["clean"], "folds": ["loso-spk00", "loso-spk01"]}))
    return GridConfig.load(path)


def _neutral_run(grid: GridConfig, fold_name: str, seed: int):
    """A finished run that puts 0.55 on neutral for every utterance: a weak model."""
    manifest, protocol = load_corpus(grid.data)
    fold = protocol.fold(fold_name)
    run = Path(grid.out) / fold_name / "scratch" / "clean" / "none" / f"seed-{seed}"
    run.mkdir(parents=True)
    probs = [0.55, 0.15, 0.15, 0.15]

    def preds(ids):
        return [{"id": i, "true": manifest[i].emotion, "pred": "neutral", "probs": probs} for i in ids]
    (run / "scores.json").write_text(json.dumps({"clean": {"labels": manifest.labels, "predictions": preds(fold.test)}}))
    (run / "eval" / "dev-clean").mkdir(parents=True)
    (run / "eval" / "dev-clean" / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds(fold.split("dev"))))


def test_fusion_of_a_grid_scores_the_model_the_probe_and_the_dev_choice(tmp_path, synthetic_corpus):
    grid = _grid(tmp_path, synthetic_corpus)
    for fold in ("loso-spk00", "loso-spk01"):
        _neutral_run(grid, fold, 0)
    manifest, protocol = load_corpus(synthetic_corpus)
    fold = protocol.fold("loso-spk00")
    y_test = [manifest.label_index(manifest[i].emotion) for i in fold.test]
    always_neutral = f1_score(y_test, [0] * len(y_test), average="weighted")

    model_only, _, _ = fuse_grid(grid, "mfcc-lr", weight=1.0)
    row = next(r for r in model_only if r["fold"] == "loso-spk00")
    assert row["init"] == "scratch+fused-mfcc-lr" and row["seed"] == "0" and row["test"] == "clean"
    assert row["weighted_f1"] == pytest.approx(always_neutral)

    # weight 0: the probe alone, which must score as the baseline fitted in that fold
    clf, dev_f1 = fit_in_fold("mfcc-lr", manifest, fold, synthetic_corpus, progress=False)
    x_test = baseline_features("mfcc-lr", manifest, fold.test, synthetic_corpus, progress=False)
    probe_f1 = f1_score(y_test, clf.predict(x_test), average="weighted")
    probe_only, preds, choices = fuse_grid(grid, "mfcc-lr", weight=0.0)
    assert next(r for r in probe_only if r["fold"] == "loso-spk00")["weighted_f1"] == pytest.approx(probe_f1)
    assert probe_f1 > always_neutral + 0.2  # the synthetic emotions are separable: the probe is the better member
    assert next(c for c in choices if c["fold"] == "loso-spk00")["dev_probe"] == pytest.approx(dev_f1)
    assert len(preds["loso-spk00|scratch+fused-mfcc-lr|clean|none|0|clean"]) == len(fold.test)

    # chosen on dev: the always-neutral model is outvoted
    chosen = write_fusion(tmp_path / "grid.yaml", tmp_path / "fused", "mfcc-lr")
    assert all(c["weight"] < 1.0 and c["dev_fused"] >= c["dev_model"] for c in chosen)
    written = list(csv.DictReader(open(tmp_path / "fused" / "results.csv")))
    assert {r["fold"] for r in written} == {"loso-spk00", "loso-spk01"}
    assert list(csv.DictReader(open(tmp_path / "fused" / "weights.csv")))[0]["weight"] == str(chosen[0]["weight"])
    with pytest.raises(UserError, match=r"results.csv: exists; pass --force"):
        write_fusion(tmp_path / "grid.yaml", tmp_path / "fused", "mfcc-lr")
    text = write_report([tmp_path / "fused" / "results.csv"], tmp_path / "report", "fused").read_text()
    assert "scratch+fused-mfcc-lr" in text and "\n0 runs:" in text  # fused rows are no trained run


def test_refusals_name_the_option(tmp_path, synthetic_corpus):
    grid = _grid(tmp_path, synthetic_corpus)
    with pytest.raises(UserError, match=r"--probe: must be one of rzstates-lr, mfcc-lr"):
        fuse_grid(grid, "egemaps-svm")
    with pytest.raises(UserError, match=r"--weight: 1.5 is not in \[0, 1\]"):
        fuse_grid(grid, "mfcc-lr", weight=1.5)
    with pytest.raises(UserError, match=r"no finished run to fuse"):
        fuse_grid(grid, "mfcc-lr")
