"""The per-fold figure: each fold's seed mean per scheme and baseline, the pairs a fold-level test compares."""

from __future__ import annotations

import pytest

from copypaste_ser.experiments.report_plots import (
    baseline_levels,
    fold_scores,
    paper_scores,
    plot_folds,
    plot_report,
    seed_spread,
)


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


def test_a_figures_cell_is_the_tables_mean_over_folds_of_seed_means_and_seed_spread():
    runs = {("f1", "0"): 0.60, ("f1", "1"): 0.70, ("f1", "2"): 0.80, ("f2", "0"): 0.50}
    mean, spread = seed_spread(runs)
    assert mean == pytest.approx((70.0 + 50.0) / 2)  # not the mean over the four runs (65.0)
    assert spread == pytest.approx((10.0 + 0.0) / 2)  # f1's std over seeds; f2, one seed, spreads 0
    assert seed_spread({}) == (pytest.approx(float("nan"), nan_ok=True), 0.0)  # a scheme not run: no point


def test_every_baseline_gets_a_level_the_whisper_probe_included():
    rows = [_row("f1", b, "none", "-", f1) for b, f1 in
            [("egemaps-svm", 0.40), ("mfcc-lr", 0.30), ("rzstates-lr", 0.50), ("whisper-lr", 0.80)]]
    rows += [_row("f2", "whisper-lr", "none", "-", 0.70), _row("f1", "whisper-lr", "none", "-", 0.1, test="0dB")]
    levels = baseline_levels(rows)
    assert len(levels) == 4  # the plot once drew only the first three
    assert levels["Whisper-base block 3 mean+std + logistic regression"] == pytest.approx(75.0)


def test_paper_scores_follow_the_papers_tables():
    assert paper_scores("crema-d", "scratch", "clean", "clean", ["none", "n-cp"]) == [71.46, 74.34]  # Table 2
    assert paper_scores("crema-d", "resemblyzer", "0dB", "clean+noise", ["se-cp"]) == [76.38]      # Table 6
    assert paper_scores("crema-d", "scratch", "10dB", "clean", ["none"]) is None  # no scratch noisy table
    assert paper_scores(None, "resemblyzer", "clean", "clean", ["none"]) is None


def test_the_report_figures_are_drawn_with_the_papers_numbers(tmp_path):
    rows = ROWS + [_row("f2", "scratch", "none", "0", 0.3, test="10dB")]
    paths = plot_report(rows, tmp_path, paper="crema-d")
    assert [p.name for p in paths] == ["scores_by_scheme.png", "score_vs_snr.png", "scores_by_fold.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
