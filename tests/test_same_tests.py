"""Runs compared in one fold must test the same utterances (folds assigned one way)."""

from __future__ import annotations

import pytest
from test_bad_input import run_cli
from test_gridresults import _slice

from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.same_tests import check_same_tests, same_utterances
from copypaste_ser.experiments.report import write_report


def test_ids_match_as_they_are_or_with_the_prefix_combine_gives_them():
    assert same_utterances({"03a01Fa", "03a01Nc"}, {"03a01Fa", "03a01Nc"})
    assert same_utterances({"emodb-03a01Fa", "emodb-03a01Nc"}, {"03a01Fa", "03a01Nc"})
    assert same_utterances({"03-01-01", "03-01-02"}, {"ravdess-03-01-01", "ravdess-03-01-02"})
    assert not same_utterances({"03a01Fa", "03a01Nc"}, {"03a01Fa", "08a01Nc"})  # same size, one speaker swapped
    assert not same_utterances({"emodb-03a01Fa", "other-03a01Nc"}, {"03a01Fa", "03a01Nc"})
    assert not same_utterances({"x03a01Fa", "x03a01Nc"}, {"03a01Fa", "03a01Nc"})  # not a corpus prefix
    assert not same_utterances({"a", "b"}, {"a", "b", "c"})


def test_runs_of_one_fold_and_test_on_other_utterances_are_refused():
    preds = {"kfold-1|scratch|clean|none|0|clean": {"1001_a": ("sad", "sad"), "1002_a": ("sad", "sad")},
             "kfold-2|scratch|clean|none|0|clean": {"1003_a": ("sad", "sad")},  # another fold: its own speakers
             "kfold-1|scratch|clean|none|0|10dB": {"1001_a": ("sad", "sad")}}   # another test: checked apart
    check_same_tests(preds)
    preds["kfold-1|egemaps-svm|clean|none|-|clean"] = {"1001_a": ("sad", "sad"), "1004_a": ("sad", "sad")}
    with pytest.raises(UserError) as e:
        check_same_tests(preds, {"kfold-1|egemaps-svm|clean|none|-|clean": "old/results.csv"})
    assert str(e.value) == (
        "fold kfold-1, test clean: kfold-1|scratch|clean|none|0|clean tested 2 utterances, "
        "kfold-1|egemaps-svm|clean|none|-|clean (old/results.csv) 2 (1 shared): their data folders assign "
        "speakers to folds differently; run (or score) both on one prepared folder before comparing them")


def test_a_report_merging_files_of_two_fold_assignments_is_one_line_naming_both(tmp_path):
    first = _slice(tmp_path / "seed0", 0, {"u1": ["neutral", "neutral"], "u2": ["angry", "neutral"]})
    second = _slice(tmp_path / "seed1", 1, {"u1": ["neutral", "angry"], "u3": ["angry", "angry"]})
    code, out = run_cli(["report", str(first), str(second), "--out", str(tmp_path / "report")])
    assert code == 2
    assert out.strip().splitlines() == [
        f"error: fold loso-1, test clean: loso-1|scratch|clean|none|0|clean ({first}) tested 2 utterances, "
        f"loso-1|scratch|clean|none|1|clean ({second}) 2 (1 shared): their data folders assign speakers to "
        "folds differently; run (or score) both on one prepared folder before comparing them"]
    assert not (tmp_path / "report").exists()
    write_report([first], tmp_path / "one", "one")  # either file alone is fine
    assert (tmp_path / "one" / "report.md").is_file()
