"""A learned block mix's weights: from a run's metrics into results.csv, then a report table and plot."""

import csv

import pytest

from copypaste_ser.experiments.layer_weights import (
    layer_weight_columns,
    layer_weight_section,
    mean_layer_weights,
    plot_layer_weights,
)


def _row(init, seed, weights, fold="cv-1", test="clean"):
    row = {"fold": fold, "init": init, "training_data": "clean", "copypaste": "none", "seed": str(seed),
           "test": test, "weighted_f1": "0.8", "uar": "0.8", "accuracy": "0.8", "best_epoch": "2",
           "train_seconds": "10"}
    row.update({f"layer_weight_{b}": str(w) for b, w in weights.items()})
    return row


def test_metrics_without_a_mix_add_no_columns_and_with_one_a_column_per_block():
    assert layer_weight_columns({"weighted_f1": 0.8}) == {}
    assert layer_weight_columns({"layer_weights": {"0": 0.25, "3": 0.75}}) == {"layer_weight_0": 0.25,
                                                                               "layer_weight_3": 0.75}


def test_the_table_averages_each_models_runs_and_bolds_its_largest_block():
    rows = [_row("mix", 0, {0: 0.2, 1: 0.3, 2: 0.5}), _row("mix", 1, {0: 0.4, 1: 0.3, 2: 0.3}),
            _row("mix", 0, {0: 0.9, 1: 0.05, 2: 0.05}, test="10dB"),  # one model, counted once: clean rows
            _row("b3", 0, {}), _row("whisper-lr", "-", {})]
    weights = mean_layer_weights(rows)
    assert list(weights) == [("mix", "clean", "none")]
    assert weights[("mix", "clean", "none")][0].tolist() == [0.2, 0.4]
    table = layer_weight_section(rows)
    assert "| mix | clean | No CP | 2 | 0.300 ± 0.141 | 0.300 ± 0.000 | **0.400 ± 0.141** |" in table
    assert layer_weight_section([_row("b3", 0, {})]) == []


def test_models_mixing_other_blocks_leave_the_blocks_they_lack_empty():
    rows = [_row("mix7", 0, {0: 0.1, 6: 0.9}), _row("mix2", 0, {2: 0.6, 3: 0.4})]
    table = "\n".join(layer_weight_section(rows))
    assert "| block 0 | block 2 | block 3 | block 6 |" in table
    assert "| mix7 | clean | No CP | 1 | 0.100 ± 0.000 | - | - | **0.900 ± 0.000** |" in table
    assert "| mix2 | clean | No CP | 1 | - | **0.600 ± 0.000** | 0.400 ± 0.000 | - |" in table


def test_the_plot_is_drawn_only_where_a_model_learned_a_mix(tmp_path):
    assert plot_layer_weights([_row("b3", 0, {})], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
    path = plot_layer_weights([_row("mix", 0, {0: 0.2, 1: 0.8})], tmp_path / "w.png")
    assert path == tmp_path / "w.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_report_of_a_mix_shows_its_weights_and_keeps_them_in_its_results(tmp_path):
    from copypaste_ser.experiments.report import write_report
    from copypaste_ser.files.atomic import atomic_write_csv

    grid = tmp_path / "grid"
    grid.mkdir()
    rows = [_row("mix", s, {0: w, 1: 1 - w}, fold=f) for s, w in ((0, 0.3), (1, 0.5)) for f in ("cv-1", "cv-2")]
    atomic_write_csv(grid / "results.csv", rows)
    report = write_report(grid / "results.csv", tmp_path / "out", "mix").read_text()
    assert "| mix | clean | No CP | 4 | 0.400 ± 0.115 | **0.600 ± 0.115** |" in report
    assert "![layer_weights](layer_weights.png)" in report and (tmp_path / "out" / "layer_weights.png").is_file()
    kept = list(csv.DictReader(open(tmp_path / "out" / "results.csv")))
    assert sorted(float(r["layer_weight_0"]) for r in kept) == pytest.approx([0.3, 0.3, 0.5, 0.5])


def test_train_fold_all_rows_carry_the_weights():
    from copypaste_ser.experiments.cross_validation import _result_row
    from copypaste_ser.training.config import TrainConfig

    metrics = {"weighted_f1": 0.8, "uar": 0.8, "accuracy": 0.8, "per_class_f1": {"sad": 0.8},
               "layer_weights": {"0": 0.4, "1": 0.6}}
    row = _result_row("cv-1", 0, TrainConfig(), metrics)
    assert (row["layer_weight_0"], row["layer_weight_1"]) == (0.4, 0.6)
