"""copypaste-ser choose: nested selection on dev speakers, matched runs, the test grids."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from copypaste_ser.errors import UserError
from copypaste_ser.experiments.choose import choose_per_fold, write_choice
from copypaste_ser.experiments.grid_config import GridConfig


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from copypaste_ser.data.corpora.synthetic import generate
    from copypaste_ser.data.prepare import prepare_to_dir

    root = tmp_path_factory.mktemp("choose")
    generate(root / "audio", speakers=4, utterances_per_emotion=2, seed=4)
    prepare_to_dir("synthetic", root / "audio", root / "data", folds="loso")
    return root / "data"


def _candidate(tmp: Path, data: Path, name: str, runs: dict[tuple[str, int], tuple[float, float]],
               train: dict | None = None) -> Path:
    """A dev grid config and its finished runs: (fold, seed) -> (dev wF1, test wF1)."""
    config = tmp / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"data": str(data), "out": str(tmp / f"runs-{name}"), "preset": "tiny",
                                      "train": train or {"epochs": 1, "threads": 1}, "copypaste": ["none"],
                                      "training_data": ["clean"], "seeds": [0, 1], "folds": ["loso-*"],
                                      "snrs": []}))
    for (fold, seed), (dev, test) in runs.items():
        run = tmp / f"runs-{name}" / fold / "scratch" / "clean" / "none" / f"seed-{seed}"
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"status": "complete"}))
        (run / "metrics.json").write_text(json.dumps({"dev_weighted_f1": dev, "weighted_f1": test}))
    return config


def _folds(data: Path) -> list[str]:
    return [f["name"] for f in json.loads((data / "protocol.json").read_text())["folds"]]


def test_each_fold_chooses_on_its_dev_speakers_and_test_scores_never_count(corpus, tmp_path):
    f = _folds(corpus)
    # a: better on dev in folds 0-1, far worse on test there; b: better on dev in the other folds
    a = _candidate(tmp_path, corpus, "a", {(k, 0): (0.8 if i < 2 else 0.5, 0.1) for i, k in enumerate(f)})
    b = _candidate(tmp_path, corpus, "b", {(k, 0): (0.7 if i < 2 else 0.6, 0.99) for i, k in enumerate(f)})
    choices = choose_per_fold({"a.yaml": GridConfig.load(a), "b.yaml": GridConfig.load(b)})
    assert [c.chosen for c in choices] == ["a.yaml", "a.yaml", "b.yaml", "b.yaml"]
    assert choices[0].dev == {"a.yaml": 0.8, "b.yaml": 0.7}


def test_candidates_are_compared_on_the_runs_all_of_them_finished(corpus, tmp_path):
    f = _folds(corpus)[0]
    # b's extra seed-1 run is lucky; a never ran seed 1: only seed 0 is compared
    a = _candidate(tmp_path, corpus, "a", {(f, 0): (0.70, 0.5)})
    b = _candidate(tmp_path, corpus, "b", {(f, 0): (0.60, 0.5), (f, 1): (1.0, 0.5)})
    (choice,) = choose_per_fold({"a.yaml": GridConfig.load(a), "b.yaml": GridConfig.load(b)})
    assert choice.chosen == "a.yaml" and choice.runs == [("clean", "none", 0)]
    assert choice.dev == {"a.yaml": 0.70, "b.yaml": 0.60}


def test_a_fold_without_matched_runs_is_refused(corpus, tmp_path):
    f = _folds(corpus)
    a = _candidate(tmp_path, corpus, "a", {(f[0], 0): (0.7, 0.5), (f[1], 0): (0.7, 0.5)})
    b = _candidate(tmp_path, corpus, "b", {(f[0], 0): (0.6, 0.5)})
    with pytest.raises(UserError, match=f"fold '{f[1]}' has no run that every candidate finished"):
        choose_per_fold({"a.yaml": GridConfig.load(a), "b.yaml": GridConfig.load(b)})
    with pytest.raises(UserError, match="no candidate has a finished run"):
        choose_per_fold({"c.yaml": GridConfig.load(_candidate(tmp_path, corpus, "c", {}))})


def test_choose_then_run_reuses_the_dev_runs_and_reports_the_chosen_config_per_fold(corpus, tmp_path):
    from copypaste_ser.experiments.choose import run_tests
    from copypaste_ser.experiments.grid import run_grid

    configs = []
    for name, lr in (("lr-low", 0.001), ("lr-high", 0.01)):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump({"data": str(corpus), "out": str(tmp_path / f"runs-{name}"), "preset": "tiny",
                                       "train": {"epochs": 1, "threads": 1, "lr": lr}, "copypaste": ["none"],
                                       "training_data": ["clean"], "seeds": [0], "folds": ["loso-*"], "snrs": []}))
        run_grid(GridConfig.load(cfg), progress=False)
        configs.append(cfg)
    out = tmp_path / "choice"
    choices, tests = write_choice(configs, out)
    record = json.loads((out / "choice.json").read_text())
    assert [r["chosen"] for r in record["folds"]] == [c.chosen for c in choices]
    for c in choices:  # the choice follows the dev scores of the runs' metrics.json
        devs = {n: json.loads((tmp_path / f"runs-{Path(n).stem}" / c.fold / "scratch" / "clean" / "none" / "seed-0"
                               / "metrics.json").read_text())["dev_weighted_f1"] for n in c.dev}
        assert c.dev == devs and c.chosen == max(devs, key=lambda n: (devs[n], -list(devs).index(n)))
    with pytest.raises(UserError, match="exists; pass --force"):
        write_choice(configs, out)
    for test in tests:  # written relative to the folder holding them, so a repository keeps them
        raw = yaml.safe_load(test.read_text())
        assert not Path(raw["data"]).is_absolute() and (out / raw["data"]).resolve() == corpus.resolve()
    report = run_tests(choices, configs, tests, out, progress=False)
    rows = list(csv.DictReader(open(report.parent / "results.csv")))
    trained = {r["fold"] for r in rows if r["init"] == "scratch"}
    assert trained == {c.fold for c in choices}
    for c in choices:  # each fold's test row is the chosen candidate's own run, not trained again
        test_run = tmp_path / f"runs-{Path(c.chosen).stem}.test-choice" / c.fold / "scratch" / "clean" / "none" / "seed-0" / "model.pt"
        dev_run = tmp_path / f"runs-{Path(c.chosen).stem}" / c.fold / "scratch" / "clean" / "none" / "seed-0" / "model.pt"
        assert test_run.read_bytes() == dev_run.read_bytes()


def test_test_configs_keep_a_linked_data_folder_as_written(corpus, tmp_path):
    """A corpus reached through a link (data/crema -> wherever it lies on this machine) stays the
    link in the test grid, so the file means the same in another clone."""
    from copypaste_ser.experiments.choose import FoldChoice, test_configs

    (tmp_path / "repo" / "data").mkdir(parents=True)
    (tmp_path / "repo" / "data" / "corpus").symlink_to(corpus)
    grids = tmp_path / "repo" / "grids"
    grids.mkdir()
    (grids / "a.yaml").write_text(yaml.safe_dump({"data": "../data/corpus", "out": "../runs/a"}))
    out = grids / "choice"
    out.mkdir()
    fold = _folds(corpus)[0]
    text = test_configs([FoldChoice(fold, "a.yaml", {"a.yaml": 0.5}, [])], {"a.yaml": grids / "a.yaml"}, out)
    raw = yaml.safe_load(text["test-a.yaml"])
    assert raw["data"] == "../../data/corpus" and raw["out"] == "../../runs/a.test-choice"
    assert raw["folds"] == [fold]


def test_a_candidate_joining_an_earlier_choice_gets_the_choice_over_all_without_its_runs(corpus, tmp_path):
    import shutil

    f = _folds(corpus)
    a = _candidate(tmp_path, corpus, "a", {(k, s): (0.80 if i == 0 else 0.50, 0.1) for i, k in enumerate(f) for s in (0, 1)})
    b = _candidate(tmp_path, corpus, "b", {(k, s): (0.60, 0.9) for k in f for s in (0, 1)})
    # c beats both in fold 1 only on seed 0; its lucky extra seed 2 must not count
    c = _candidate(tmp_path, corpus, "c", {**{(k, s): (0.55, 0.5) for k in f for s in (0, 1)},
                                           (f[1], 0): (0.95, 0.5), (f[2], 2): (1.0, 0.5)})
    all_at_once = choose_per_fold({n: GridConfig.load(p) for n, p in (("a.yaml", a), ("b.yaml", b), ("c.yaml", c))})
    write_choice([a, b], tmp_path / "first")
    shutil.rmtree(tmp_path / "runs-a"), shutil.rmtree(tmp_path / "runs-b")  # the earlier runs are gone
    joined, tests = write_choice([c], tmp_path / "joined", earlier=tmp_path / "first")
    assert joined == all_at_once
    assert [x.chosen for x in joined] == ["a.yaml", "c.yaml", "b.yaml", "b.yaml"]
    assert joined[1].dev == {"a.yaml": 0.5, "b.yaml": 0.6, "c.yaml": (0.95 + 0.55) / 2}
    assert [t.name for t in tests] == ["test-c.yaml"] and yaml.safe_load(tests[0].read_text())["folds"] == [f[1]]
    record = json.loads((tmp_path / "joined" / "choice.json").read_text())
    assert list(record["candidates"]) == ["a.yaml", "b.yaml", "c.yaml"] and record["earlier"] == str(tmp_path / "first")


def test_joining_an_earlier_choice_refuses_what_would_make_it_another_choice(corpus, tmp_path):
    f = _folds(corpus)
    a = _candidate(tmp_path, corpus, "a", {(k, s): (0.7, 0.5) for k in f for s in (0, 1)})
    b = _candidate(tmp_path, corpus, "b", {(k, s): (0.6, 0.5) for k in f for s in (0, 1)})
    short = _candidate(tmp_path, corpus, "short", {(k, 0): (0.9, 0.5) for k in f})  # never ran seed 1
    write_choice([a, b], tmp_path / "first")
    with pytest.raises(UserError, match=rf"short.yaml has not finished the run clean/none/seed 1 of fold '{f[0]}'"):
        write_choice([short], tmp_path / "joined", earlier=tmp_path / "first")
    with pytest.raises(UserError, match="two candidates are named a.yaml"):
        write_choice([a], tmp_path / "joined", earlier=tmp_path / "first")
    with pytest.raises(UserError, match="that is the --earlier folder"):
        write_choice([short], tmp_path / "first", force=True, earlier=tmp_path / "first")
    with pytest.raises(UserError, match="no choice.json there"):
        write_choice([short], tmp_path / "joined", earlier=tmp_path)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "choice.json").write_text('{"folds": [{"fold": "x"}]}')
    with pytest.raises(UserError, match="not a choice.json written by"):
        write_choice([short], tmp_path / "joined", earlier=tmp_path / "broken")
    assert not (tmp_path / "joined").exists()


def test_an_extended_choice_reports_the_earlier_test_rows_where_that_choice_stands(corpus, tmp_path):
    from copypaste_ser.experiments.choose import run_tests
    from copypaste_ser.experiments.grid import run_grid

    configs = {}
    for name, lr in (("lr-low", 0.001), ("lr-high", 0.01), ("lr-mid", 0.003)):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump({"data": str(corpus), "out": str(tmp_path / f"runs-{name}"), "preset": "tiny",
                                       "train": {"epochs": 1, "threads": 1, "lr": lr}, "copypaste": ["none"],
                                       "training_data": ["clean"], "seeds": [0], "folds": ["loso-*"], "snrs": []}))
        run_grid(GridConfig.load(cfg), progress=False)
        configs[name] = cfg
    choices, tests = write_choice([configs["lr-low"], configs["lr-high"]], tmp_path / "first")
    first = run_tests(choices, [configs["lr-low"], configs["lr-high"]], tests, tmp_path / "first", progress=False)
    f = _folds(corpus)
    for i, fold in enumerate(f):  # make lr-mid win on dev in folds 0-1 and lose in 2-3, whatever training gave
        metrics = tmp_path / "runs-lr-mid" / fold / "scratch" / "clean" / "none" / "seed-0" / "metrics.json"
        metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "dev_weighted_f1": 2.0 if i < 2 else -1.0}))
    joined, tests = write_choice([configs["lr-mid"]], tmp_path / "joined", earlier=tmp_path / "first")
    report = run_tests(joined, [configs["lr-mid"]], tests, tmp_path / "joined", progress=False, earlier=tmp_path / "first")

    def scores(path: Path) -> dict[str, str]:
        return {r["fold"]: r["weighted_f1"] for r in csv.DictReader(open(path)) if r["init"] == "scratch"}

    got, before = scores(report.parent / "results.csv"), scores(first.parent / "results.csv")
    mid = {fold: str(json.loads((tmp_path / "runs-lr-mid" / fold / "scratch" / "clean" / "none" / "seed-0"
                                 / "metrics.json").read_text())["weighted_f1"]) for fold in f[:2]}
    assert {k: float(v) for k, v in got.items()} == {**{k: float(before[k]) for k in f[2:]},
                                                     **{k: float(v) for k, v in mid.items()}}


def test_a_candidate_whose_runs_are_rows_from_elsewhere_is_chosen_and_reported_from_them(corpus, tmp_path):
    from copypaste_ser.experiments.choose import run_tests

    f = _folds(corpus)
    a = _candidate(tmp_path, corpus, "a", {(k, 0): (0.5, 0.9) for k in f})
    b = _candidate(tmp_path, corpus, "b", {})  # its runs were made on another machine: rows only
    done = tmp_path / "b-rows" / "results.csv"
    done.parent.mkdir()
    with open(done, "w", newline="") as fh:
        w = csv.DictWriter(fh, ["fold", "init", "training_data", "copypaste", "seed", "test", "weighted_f1",
                                "dev_weighted_f1"])
        w.writeheader()
        w.writerows({"fold": k, "init": "scratch", "training_data": "clean", "copypaste": "none", "seed": s,
                     "test": "clean", "weighted_f1": 0.6, "dev_weighted_f1": 0.7 if s == 0 else 0.1}
                    for k in f for s in (0, 1))
    out = tmp_path / "choice"
    choices, tests = write_choice([a, b], out, done={"b.yaml": [done]})
    # compared on seed 0 alone (a has no seed 1): b's row 0.7 against a's run 0.5, in every fold
    assert [(c.chosen, c.dev, c.runs) for c in choices] == [
        ("b.yaml", {"a.yaml": 0.5, "b.yaml": 0.7}, [("clean", "none", 0)])] * len(f)
    assert json.loads((out / "choice.json").read_text())["done"] == {"b.yaml": [str(done)]}
    report = run_tests(choices, [a, b], tests, out, progress=False, done={"b.yaml": [done]})
    rows = list(csv.DictReader(open(report.parent / "results.csv")))
    assert sorted((r["fold"], r["seed"], float(r["weighted_f1"])) for r in rows) == sorted(
        (k, str(s), 0.6) for k in f for s in (0, 1))
    assert not any((tmp_path / "runs-b.test-choice").rglob("model.pt"))  # nothing trained

    from test_bad_input import run_cli

    other = tmp_path / "other.csv"
    other.write_text("fold,init,training_data,copypaste,seed,test,weighted_f1\nkfold-1,whisper-attention,clean,"
                     "none,0,clean,0.5\n")
    refusals = {f"b.yaml={other}": f"error: --done {other}: holds none of this grid's runs (its first run: kfold-1, "
                                   "whisper-attention, clean, none, 0); give the results.csv of this grid's finished runs",
                f"c.yaml={done}": "error: --done c.yaml=...: not one of the candidates (a.yaml, b.yaml); write "
                                  "--done CANDIDATE=FILE with the candidate's config file name",
                str(done): f"error: --done {done}: write CANDIDATE=FILE (the candidate's config file name, then the "
                           "results.csv of its runs finished elsewhere)"}
    for given, line in refusals.items():
        code, printed = run_cli(["choose", str(a), str(b), "--done", given, "--out", str(tmp_path / "refused")])
        assert (code, printed.strip().splitlines()) == (2, [line])
    assert not (tmp_path / "refused").exists()
