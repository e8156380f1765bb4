"""The per-fold figure: each fold's seed mean per scheme and baseline, the pairs a fold-level test compares."""

from __future__ import annotations

import pytest

from copypaste_ser.experiments.report_plots import fold_scores, plot_folds


def _row(fold, init, scheme, seed, f1, test="clean", data="clean"):
    return {"fold": fold, "init": init, "training_data": data, "copypaste": scheme, "seed": seed,
            "test": test, "weighted_f1": f1}


ROWS = [
    _row("f1", "scratch", "none", "0", 0.60), _row("f1", "scratch", "none", "1", 0.70),
    _row("f1", "scratch", "n-cp", "0", 0.80), _row("f1", "scratch", "n-cp", "1", 0.90),
    _row("f2", "scratch", "none", "0", 0.50), _row("f2", "scratch", "n-cp", "0", 0.55),
    _row("f1", "egemaps-svm", "none", "-", 0.40), _row("f2", "egemaps-svm", "none", "-", 0.45),
    _row("f1", "scratch", "none", "0", 0.10, test="10dB"),            # another test condition
    _row("f1", "scratch", "none", "0", 0.20, data="clean+noise"),     # other training data
]


def test_fold_scores_average_seeds_within_each_fold():
    columns, per_fold = fold_scores(ROWS, "scratch")
    assert columns == ["No CP", "N-CP", "eGeMAPS+SVM"]
    assert per_fold["f1"] == pytest.approx({"No CP": 65.0, "N-CP": 85.0, "eGeMAPS+SVM": 40.0})
    assert per_fold["f2"] == pytest.approx({"No CP": 50.0, "N-CP": 55.0, "eGeMAPS+SVM": 45.0})


def test_plot_folds_needs_two_folds(tmp_path):
    assert plot_folds([r for r in ROWS if r["fold"] == "f1"], tmp_path / "one.png") is None
    assert not (tmp_path / "one.png").exists()
    path = plot_folds(ROWS, tmp_path / "two.png")
    assert path == tmp_path / "two.png" and path.stat().st_size > 1000
