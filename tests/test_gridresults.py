"""Merging slices of a grid run apart: clean-test confusions add up over the slices' runs."""

import csv
import json

from copypaste_ser.evaluation.predictions_file import read_predictions
from copypaste_ser.experiments.grid_results import clean_confusions
from copypaste_ser.experiments.report import write_report

LABELS = ["neutral", "angry"]


def _slice(folder, seed, preds):
    """A results.csv with one run, its predictions.json and its own confusions.json."""
    folder.mkdir()
    row = {"fold": "loso-1", "init": "scratch", "training_data": "clean", "copypaste": "none", "seed": str(seed),
           "test": "clean", "weighted_f1": "0.5", "uar": "0.5", "accuracy": "0.5", "best_epoch": "1",
           "train_seconds": "1"}
    with open(folder / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
    key = "|".join(row[k] for k in ("fold", "init", "training_data", "copypaste", "seed", "test"))
    (folder / "predictions.json").write_text(json.dumps({key: preds}))
    confusion = [[sum(t == a and p == b for t, p in preds.values()) for b in LABELS] for a in LABELS]
    (folder / "confusions.json").write_text(json.dumps({"scratch|clean|none": {"labels": LABELS,
                                                                               "confusion": confusion}}))
    return folder / "results.csv"


def test_slices_with_other_seeds_add_their_confusions(tmp_path):
    first = _slice(tmp_path / "seed0", 0, {"u1": ["neutral", "neutral"], "u2": ["angry", "neutral"],
                                            "u3": ["angry", "angry"]})
    second = _slice(tmp_path / "seed1", 1, {"u1": ["neutral", "angry"], "u2": ["angry", "angry"],
                                             "u3": ["angry", "angry"]})
    write_report([first, second], tmp_path / "merged", "merged")
    merged = json.loads((tmp_path / "merged" / "confusions.json").read_text())
    # seed 0: N->N, A->N, A->A; seed 1: N->A, A->A twice; the merged table counts all six predictions
    assert merged == {"scratch|clean|none": {"labels": LABELS, "confusion": [[1, 1], [1, 3]]}}


def test_clean_confusions_skip_noisy_tests_and_keep_the_label_order():
    preds = {"f|scratch|clean|n-cp|0|clean": {"a": ["sad", "happy"], "b": ["happy", "happy"]},
             "f|scratch|clean|n-cp|0|10dB": {"a": ["sad", "sad"]}}
    known = {"scratch|clean|n-cp": {"labels": ["sad", "happy"], "confusion": [[9, 9], [9, 9]]}}
    assert clean_confusions(preds, known) == {"scratch|clean|n-cp": {"labels": ["sad", "happy"],
                                                                     "confusion": [[0, 1], [0, 1]]}}
    # without a known label order the labels are sorted
    assert clean_confusions(preds, {})["scratch|clean|n-cp"]["labels"] == ["happy", "sad"]
    # another model's label order is used only where it holds every label this model's runs name
    other = {"rz|clean|none": {"labels": ["neutral", "angry"], "confusion": [[1, 0], [0, 1]]}}
    assert clean_confusions(preds, other)["scratch|clean|n-cp"] == {"labels": ["happy", "sad"],
                                                                    "confusion": [[1, 0], [1, 0]]}


def test_two_files_naming_one_run_with_other_scores_are_warned_about(tmp_path, capsys):
    from copypaste_ser.experiments.grid_results import merge_results

    first = _slice(tmp_path / "frozen", 0, {"u1": ["neutral", "neutral"]})
    same = _slice(tmp_path / "again", 0, {"u1": ["neutral", "neutral"]})
    merge_results([first, same])  # a slice collected twice: the same scores, nothing to say
    assert "warning" not in capsys.readouterr().err
    other = _slice(tmp_path / "tuned", 0, {"u1": ["neutral", "angry"]})
    text = other.read_text().replace(",0.5,0.5,0.5,", ",0.25,0.5,0.5,")
    other.write_text(text)
    rows, _ = merge_results([first, other])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{other} and {first} both hold run loso-1/scratch/clean/none/0/clean" in err
    assert [r["weighted_f1"] for r in rows] == [0.25]  # the later file's, as before, now said


def test_labels_report_two_grids_of_one_init_apart(tmp_path, capsys):
    frozen = _slice(tmp_path / "frozen", 0, {"u1": ["neutral", "neutral"], "u2": ["angry", "neutral"]})
    tuned = _slice(tmp_path / "tuned", 0, {"u1": ["neutral", "neutral"], "u2": ["angry", "angry"]})
    tuned.write_text(tuned.read_text().replace(",0.5,0.5,0.5,", ",1.0,1.0,1.0,"))
    write_report([f"frozen={frozen}", f"tuned={tuned.parent}"], tmp_path / "both", "both")
    assert "warning" not in capsys.readouterr().err  # two models now, not one run twice
    with open(tmp_path / "both" / "results.csv", newline="") as f:
        rows = {r["init"]: r["weighted_f1"] for r in csv.DictReader(f)}
    assert rows == {"frozen": "0.5", "tuned": "1.0"}
    preds = read_predictions(tmp_path / "both" / "predictions.json")
    assert {k.split("|")[1]: v["u2"] for k, v in preds.items()} == {"frozen": ("angry", "neutral"),
                                                                     "tuned": ("angry", "angry")}
    confusions = json.loads((tmp_path / "both" / "confusions.json").read_text())
    assert confusions["tuned|clean|none"]["confusion"] == [[1, 0], [0, 1]]
    assert confusions["frozen|clean|none"]["confusion"] == [[1, 0], [1, 0]]
    assert "Init: tuned" in (tmp_path / "both" / "report.md").read_text()


def test_a_grids_baseline_predictions_are_merged_for_its_report(tmp_path):
    from copypaste_ser.evaluation.predictions_file import write_predictions
    from copypaste_ser.experiments.grid_results import merge_predictions

    grid = tmp_path / "grid"
    (grid / "baseline").mkdir(parents=True)
    row = {"fold": "default", "init": "egemaps-svm", "training_data": "clean", "copypaste": "none", "seed": "-",
           "test": "clean", "weighted_f1": "0.5"}
    with open(grid / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
    key = "default|egemaps-svm|clean|none|-|clean"
    assert merge_predictions([grid / "results.csv"]) == {}
    write_predictions(grid / "baseline" / "predictions.json", {key: {"u1": ["sad", "happy"]}})
    assert merge_predictions([grid / "results.csv"]) == {key: {"u1": ("sad", "happy")}}


def _probe(folder, f1, fold="loso-1"):
    """A results.csv holding one Whisper probe row (a baseline: seed '-')."""
    folder.mkdir()
    row = {"fold": fold, "init": "whisper-lr", "training_data": "clean", "copypaste": "none", "seed": "-",
           "test": "clean", "weighted_f1": f1, "uar": f1, "accuracy": f1, "best_epoch": "", "train_seconds": "0"}
    with open(folder / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
    return folder / "results.csv"


def test_a_label_on_a_file_of_baselines_keeps_them_apart_and_baselines(tmp_path, capsys):
    from copypaste_ser.experiments.grid_results import is_baseline, merge_results

    own, plus = _probe(tmp_path / "own", "0.8", "cv-1"), _probe(tmp_path / "plus", "0.9", "cv-1")
    rows, _ = merge_results([own, f"plus={plus}"])
    assert {r["init"]: r["weighted_f1"] for r in rows} == {"whisper-lr": 0.8, "plus:whisper-lr": 0.9}
    assert is_baseline("plus:whisper-lr") and not is_baseline("plus")
    assert "warning" not in capsys.readouterr().err


def test_a_labelled_probe_is_reported_as_a_baseline_beside_the_plain_one(tmp_path):
    model = _slice(tmp_path / "model", 0, {"u1": ["neutral", "neutral"], "u2": ["angry", "neutral"]})
    own, plus = _probe(tmp_path / "own", "0.4"), _probe(tmp_path / "plus", "0.7")
    report = write_report([model, own, f"plus={plus}"], tmp_path / "out", "probes").read_text()
    assert "## Init: plus" not in report and "## Init: scratch" in report
    assert "| Whisper-base block 3 mean+std + logistic regression (plus) baseline (clean training) | 70.00 |" in report
    assert "| Whisper-base block 3 mean+std + logistic regression baseline (clean training) | 40.00 |" in report


def test_a_model_fused_with_a_probe_or_a_seed_ensemble_is_no_baseline():
    from copypaste_ser.experiments.grid_results import is_baseline

    assert is_baseline("whisper-lr") and is_baseline("egemaps-svm") and is_baseline("plus:mfcc-lr")
    assert not is_baseline("scratch+fused-mfcc-lr") and not is_baseline("scratch+seed-ensemble")
    assert not is_baseline("whisper-attention") and not is_baseline("tuned:whisper-attention")


def test_baseline_names_list_the_known_baselines_first_then_labelled_ones():
    from copypaste_ser.experiments.grid_results import BASELINES, baseline_names

    rows = [{"init": i} for i in ("plus:whisper-lr", "scratch", "whisper-lr", "egemaps-svm", "all:egemaps-svm")]
    names = baseline_names(rows)
    # the known baselines in their usual order, then the labelled ones as they came
    assert list(names) == [b for b in BASELINES if b in ("whisper-lr", "egemaps-svm")] + ["plus:whisper-lr",
                                                                                          "all:egemaps-svm"]
    assert names["plus:whisper-lr"] == f"{BASELINES['whisper-lr']} (plus)" and "scratch" not in names


def _model_and_probe(folder):
    """A results.csv holding a trained model's run (init plus) and a probe's row, with predictions."""
    folder.mkdir()
    rows = [{"fold": "cv-1", "init": "plus", "training_data": "clean", "copypaste": "none", "seed": "0",
             "test": "clean", "weighted_f1": "0.9", "best_epoch": "3", "train_seconds": "5"},
            {"fold": "cv-1", "init": "whisper-lr", "training_data": "clean", "copypaste": "none", "seed": "-",
             "test": "clean", "weighted_f1": "0.7", "best_epoch": "", "train_seconds": "0"}]
    with open(folder / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    keys = ["|".join(r[k] for k in ("fold", "init", "training_data", "copypaste", "seed", "test")) for r in rows]
    (folder / "predictions.json").write_text(json.dumps({keys[0]: {"u1": ["sad", "sad"]},
                                                         keys[1]: {"u1": ["sad", "happy"]}}))
    return folder / "results.csv"


def test_an_init_filter_takes_only_those_rows_and_their_predictions(tmp_path):
    from copypaste_ser.experiments.grid_results import merge_predictions, merge_results

    both = _model_and_probe(tmp_path / "both")
    rows, _ = merge_results([f"block3={both}@plus"])
    assert [(r["init"], r["weighted_f1"]) for r in rows] == [("block3", 0.9)]
    assert merge_predictions([f"block3={both}@plus"]) == {"cv-1|block3|clean|none|0|clean": {"u1": ("sad", "sad")}}
    rows, _ = merge_results([f"{both}@whisper-lr,plus"])  # several inits, no label: names kept
    assert sorted(r["init"] for r in rows) == ["plus", "whisper-lr"]
    assert [r["init"] for r in merge_results([f"{tmp_path / 'both'}@whisper-lr"])[0]] == ["whisper-lr"]  # a folder


def test_an_init_the_file_lacks_or_an_empty_filter_is_a_one_line_error(tmp_path):
    import pytest

    from copypaste_ser.errors import UserError
    from copypaste_ser.experiments.grid_results import merge_results

    both = _model_and_probe(tmp_path / "both")
    with pytest.raises(UserError, match=r"holds no rows of init 'mix'; it holds plus, whisper-lr"):
        merge_results([f"{both}@mix"])
    with pytest.raises(UserError, match="nothing after '@'"):
        merge_results([f"{both}@"])


def test_a_path_with_an_at_sign_that_exists_is_not_split(tmp_path):
    from copypaste_ser.experiments.grid_results import merge_results, results_source

    odd = _model_and_probe(tmp_path / "run@2")
    assert results_source(odd) == (None, odd, None)
    assert len(merge_results([odd])[0]) == 2


def test_a_file_taken_in_part_lends_its_rows_but_not_its_grid_log(tmp_path):
    def log_line(seconds, runs):
        return json.dumps({"started": f"2026-12-0{runs}T00:00:00", "seconds": seconds, "workers": 1,
                           "runs_completed": runs}) + "\n"

    own = _slice(tmp_path / "own", 0, {"u1": ["neutral", "neutral"]})
    (tmp_path / "own" / "grid-log.jsonl").write_text(log_line(3600, 1))
    other = _model_and_probe(tmp_path / "other")
    (tmp_path / "other" / "grid-log.jsonl").write_text(log_line(7200, 2))
    report = write_report([own, f"{other}@whisper-lr"], tmp_path / "out", "part").read_text()
    assert "Wall time of the grid: 1.00 h in 1 invocation(s) that completed 1 runs" in report
    assert "| Whisper-base block 3 mean+std + logistic regression baseline (clean training) | 70.00 |" in report
    whole = write_report([own, other], tmp_path / "whole", "whole").read_text()  # the whole file: its log too
    assert "Wall time of the grid: 3.00 h in 2 invocation(s) that completed 3 runs" in whole
