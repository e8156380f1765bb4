"""Merging slices of a grid run apart: clean-test confusions add up over the slices' runs."""

import csv
import json

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
    first = _slice(tmp_path / "seed0", 0, {"u1": ["neutral", "neutral"], "u2": ["angry", "neutral"]})
    second = _slice(tmp_path / "seed1", 1, {"u1": ["neutral", "angry"], "u2": ["angry", "angry"],
                                             "u3": ["angry", "angry"]})
    write_report([first, second], tmp_path / "merged", "merged")
    merged = json.loads((tmp_path / "merged" / "confusions.json").read_text())
    # seed 0: N->N, A->N; seed 1: N->A, A->A twice; the merged table counts all five utterances
    assert merged == {"scratch|clean|none": {"labels": LABELS, "confusion": [[1, 1], [1, 2]]}}


def test_clean_confusions_skip_noisy_tests_and_keep_the_label_order():
    preds = {"f|scratch|clean|n-cp|0|clean": {"a": ["sad", "happy"], "b": ["happy", "happy"]},
             "f|scratch|clean|n-cp|0|10dB": {"a": ["sad", "sad"]}}
    known = {"scratch|clean|n-cp": {"labels": ["sad", "happy"], "confusion": [[9, 9], [9, 9]]}}
    assert clean_confusions(preds, known) == {"scratch|clean|n-cp": {"labels": ["sad", "happy"],
                                                                     "confusion": [[0, 1], [0, 1]]}}
    # without a known label order the labels are sorted
    assert clean_confusions(preds, {})["scratch|clean|n-cp"]["labels"] == ["happy", "sad"]


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
