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
    assert not same_utterances({"emodb-03a01Fa", "03a01Nc"}, {"03a01Fa", "03a01Nc"})  # one id without the prefix


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


def test_a_fold_fingerprint_names_its_utterances_by_their_own_corpus_ids(synthetic_corpus):
    from dataclasses import replace

    from copypaste_ser.data.manifest import Manifest, fold_test_fingerprint, load_corpus

    manifest, protocol = load_corpus(synthetic_corpus)
    fold = protocol.fold()
    same = fold_test_fingerprint(manifest, fold.test)
    assert fold_test_fingerprint(manifest, list(reversed(fold.test))) == same
    assert fold_test_fingerprint(manifest, fold.dev) != same
    assert len(same) == 12 and int(same, 16) >= 0
    # combine names EmoDB's 03a01Fa "emodb-03a01Fa" and says so in extra["corpus"]
    combined = Manifest("both", manifest.labels, [replace(u, id=f"syn-{u.id}", extra={"corpus": "syn"})
                                                  for u in manifest])
    assert fold_test_fingerprint(combined, [f"syn-{i}" for i in fold.test]) == same


def test_the_fingerprint_and_the_predictions_check_equate_a_combined_fold_with_its_source(tmp_path, synthetic_corpus):
    import shutil

    from copypaste_ser.data.combine import combine_corpora
    from copypaste_ser.data.manifest import fold_test_fingerprint, load_corpus

    other = tmp_path / "other"
    shutil.copytree(synthetic_corpus, other)
    manifest, protocol = load_corpus(synthetic_corpus)
    combined, folds = combine_corpora([synthetic_corpus, other], within=synthetic_corpus.name)
    own, joined = protocol.fold().test, folds.fold(protocol.default).test
    assert set(joined) != set(own) and len(joined) == len(own)  # prefixed ids in the combined corpus
    assert fold_test_fingerprint(combined, joined) == fold_test_fingerprint(manifest, own)
    assert same_utterances(set(joined), set(own))
    shifted = protocol.fold().dev  # as many utterances, other speakers
    assert fold_test_fingerprint(combined, joined) != fold_test_fingerprint(manifest, shifted)
    assert not same_utterances(set(joined), set(shifted))


def test_report_refuses_rows_of_one_fold_with_other_test_sets(tmp_path):
    import csv

    def results(name, test_set, seed):
        path = tmp_path / name / "results.csv"
        path.parent.mkdir()
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, ["fold", "init", "training_data", "copypaste", "seed", "test", "weighted_f1",
                                   "uar", "accuracy", "test_set"])
            w.writeheader()
            w.writerow({"fold": "kfold-1", "init": "scratch", "training_data": "clean", "copypaste": "none",
                        "seed": seed, "test": "clean", "weighted_f1": 0.5, "uar": 0.5, "accuracy": 0.5,
                        "test_set": test_set})
        return path

    old, new, same = results("old", "aaaaaaaaaaaa", 0), results("new", "bbbbbbbbbbbb", 1), results("same", "", 2)
    code, out = run_cli(["report", str(old), str(same), "--out", str(tmp_path / "fine")])
    assert code == 0, out  # a row without the column (written before it) is passed over
    code, out = run_cli(["report", str(old), str(new), "--out", str(tmp_path / "r")])
    assert code == 2
    assert out.strip().splitlines() == [
        f"error: fold kfold-1, test clean: kfold-1/scratch/clean/none/0/clean ({old}) and "
        f"kfold-1/scratch/clean/none/1/clean ({new}) tested different utterances (test_set aaaaaaaaaaaa / "
        "bbbbbbbbbbbb): their data folders assign speakers to folds differently; run (or score) both on one "
        "prepared folder before comparing them"]
    assert not (tmp_path / "r").exists()


def test_a_grid_does_not_reuse_runs_its_folds_no_longer_test(tmp_path, synthetic_corpus):
    import csv
    import shutil

    import yaml

    from copypaste_ser.data.manifest import fold_test_fingerprint, load_corpus, save_corpus

    data = tmp_path / "data"
    shutil.copytree(synthetic_corpus, data)
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(dict(data=str(data), out=str(tmp_path / "grid"), preset="tiny",
                                          train={"epochs": 1, "threads": 1}, copypaste=["none"],
                                          training_data=["clean"], seeds=[0], snrs=[], workers=1)))
    assert run_cli(["grid", str(config)])[0] == 0
    manifest, protocol = load_corpus(data)
    fold = protocol.fold()
    rows = list(csv.DictReader(open(tmp_path / "grid" / "results.csv")))
    assert [r["test_set"] for r in rows] == [fold_test_fingerprint(manifest, fold.test)]

    fold.test, fold.dev = fold.dev, fold.test  # prepared again, with another fold assignment
    save_corpus(data, manifest, protocol)
    run = tmp_path / "grid" / "default" / "scratch" / "clean" / "none" / "seed-0"
    code, out = run_cli(["grid", str(config)])
    assert code == 2
    assert out.strip().splitlines() == [
        f"error: grid: {run} was tested on other utterances than fold default of {data} holds now (the corpus "
        "was prepared again, with another fold assignment); pass --force to train such runs again, or give the "
        "grid a new out:"]
    code, out = run_cli(["grid", str(config), "--force"])
    assert code == 0, out
    rows = list(csv.DictReader(open(tmp_path / "grid" / "results.csv")))
    assert [r["test_set"] for r in rows] == [fold_test_fingerprint(manifest, fold.test)]


def test_train_fold_all_does_not_reuse_a_seed_its_fold_no_longer_tests(tmp_path, synthetic_corpus):
    import shutil

    from copypaste_ser.data.manifest import load_corpus, save_corpus

    data = tmp_path / "data"
    shutil.copytree(synthetic_corpus, data)
    train = ["train", "--data", str(data), "--fold", "all", "--seed", "0", "--preset", "tiny", "--epochs", "1",
             "--threads", "1", "--quiet", "--out", str(tmp_path / "runs")]
    assert run_cli(train)[0] == 0
    assert run_cli(train)[0] == 0  # the same folds: the finished seed is reused
    manifest, protocol = load_corpus(data)
    fold = protocol.fold()
    fold.test, fold.dev = fold.dev, fold.test
    save_corpus(data, manifest, protocol)
    code, out = run_cli(train)
    run = tmp_path / "runs" / "default" / "seed-0"
    assert code == 2
    assert out.strip().splitlines()[-1] == (
        f"error: {run}: was tested on other utterances than fold default of {data} holds now (the corpus was "
        "prepared again); pass --force to train the seeds again")


def test_a_finished_models_scores_carry_the_folds_fingerprint(tmp_path, synthetic_corpus):
    import csv

    import torch
    from test_predict_stream import save_resnet_file

    from copypaste_ser.data.manifest import fold_test_fingerprint, load_corpus
    from copypaste_ser.experiments.score_model import score_model
    from copypaste_ser.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = save_resnet_file(build_model(ModelConfig.from_preset("tiny", 4)).eval(), tmp_path / "model.pt")
    results = score_model(model, synthetic_corpus, tmp_path / "scored", progress=False)
    manifest, protocol = load_corpus(synthetic_corpus)
    rows = list(csv.DictReader(open(results)))
    assert [(r["fold"], r["test_set"]) for r in rows] == [
        (f.name, fold_test_fingerprint(manifest, f.test)) for f in protocol.folds]
