"""grid --done: the runs a results.csv holds (finished on another machine) are not run again."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml
from test_bad_input import run_cli

from copypaste_ser.errors import UserError
from copypaste_ser.experiments.grid import run_grid
from copypaste_ser.experiments.grid_config import Cell, GridConfig, cells
from copypaste_ser.experiments.grid_done import read_done
from copypaste_ser.experiments.grid_status import grid_status, seconds_left

RULE = Path(__file__).resolve().parents[1] / "docs" / "protocol" / "reporting-rule.yaml"
FIELDS = ["fold", "init", "training_data", "copypaste", "seed", "test", "weighted_f1"]


def _config(tmp_path, synthetic_corpus, **kw):
    raw = dict(data=str(synthetic_corpus), out=str(tmp_path / "grid"), preset="tiny",
               train={"epochs": 1, "threads": 1}, copypaste=["none"], training_data=["clean"],
               seeds=[0, 1], snrs=[], workers=1)
    raw.update(kw)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _results(path, rows, f1=0.5):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows({**dict(zip(FIELDS, r)), "weighted_f1": f1} for r in rows)
    return path


def test_only_cells_held_on_every_test_condition_count(tmp_path, synthetic_corpus):
    grid = GridConfig.load(_config(tmp_path, synthetic_corpus, copypaste=["none", "n-cp"], snrs=[10],
                                      noise_root=str(tmp_path)))
    _results(tmp_path / "a" / "results.csv", [
        ("default", "scratch", "clean", "none", 0, "clean"), ("default", "scratch", "clean", "none", 0, "10dB"),
        ("default", "scratch", "clean", "n-cp", 0, "clean"),     # its 10 dB test is missing
        ("default", "scratch", "clean+noise", "none", 1, "clean"), ("default", "scratch", "clean+noise", "none", 1, "10dB"),
    ])
    _results(tmp_path / "b" / "results.csv", [   # given as its folder
        ("default", "scratch", "clean", "n-cp", 1, "clean"), ("default", "scratch", "clean", "n-cp", 1, "10dB")], 0.75)
    found = read_done(grid, [tmp_path / "a" / "results.csv", tmp_path / "b"]).runs
    assert {c: (r["seed"], r["test"], r["weighted_f1"]) for c, r in found.items()} == {
        Cell("default", "scratch", "clean", "none", 0): ("0", "clean", 0.5),
        Cell("default", "scratch", "clean", "n-cp", 1): ("1", "clean", 0.75)}
    states = {(s.cell.copypaste, s.cell.seed): (s.state, s.weighted_f1) for s in grid_status(grid, found)}
    assert states == {("none", 0): ("done elsewhere", 0.5), ("none", 1): ("not started", None),
                      ("n-cp", 0): ("not started", None), ("n-cp", 1): ("done elsewhere", 0.75)}
    assert seconds_left(grid_status(grid, found)) is None  # no run timed here


def test_a_grid_resumes_from_rows_when_its_run_folders_are_gone(tmp_path, synthetic_corpus, monkeypatch):
    config = _config(tmp_path, synthetic_corpus)
    grid = GridConfig.load(config)
    first = run_grid(grid.restricted(seeds=[0]), progress=False)
    kept = shutil.copy(first, tmp_path / "committed.csv")
    shutil.rmtree(tmp_path / "grid")  # another machine: only the committed rows are left

    import copypaste_ser.experiments.grid as grid_module
    real, trained = grid_module.run_cell, []
    monkeypatch.setattr(grid_module, "run_cell", lambda g, cell: trained.append(cell) or real(g, cell))
    code, out = run_cli(["grid", str(config), "--done", str(kept), "--status"])
    assert code == 0 and "2 runs: 1 done elsewhere, 1 not started" in out, out
    elsewhere = next(line for line in out.splitlines() if "done elsewhere" in line and " 0 " in line)
    assert elsewhere.split()[7:9] == ["-", "-"], elsewhere  # no local epochs or timing to show
    code, out = run_cli(["grid", str(config), "--done", str(kept), "--report", str(tmp_path / "report"),
                         "--rule", str(RULE)])
    assert code == 0, out
    assert "## Reporting rule" in (tmp_path / "report" / "report.md").read_text()
    assert "0 already done, 1 done elsewhere, 1 to run" in out
    assert [c.seed for c in trained] == [1]
    assert not Cell("default", "scratch", "clean", "none", 0).path(tmp_path / "grid").exists()
    own = list(csv.DictReader(open(tmp_path / "grid" / "results.csv")))
    assert [r["seed"] for r in own] == ["1"]  # the grid's file holds its own runs only
    merged = list(csv.DictReader(open(tmp_path / "report" / "results.csv")))
    assert sorted((r["seed"], r["weighted_f1"]) for r in merged) == sorted(
        [(r["seed"], r["weighted_f1"]) for r in csv.DictReader(open(kept))] + [("1", own[0]["weighted_f1"])])
    assert len(cells(grid)) == 2


def test_a_missing_done_file_is_one_line_naming_it(tmp_path, synthetic_corpus):
    config = _config(tmp_path, synthetic_corpus)
    code, out = run_cli(["grid", str(config), "--done", str(tmp_path / "nope.csv")])
    assert code == 2
    assert out.strip().splitlines() == [f"error: --done {tmp_path / 'nope.csv'}: no results.csv there; give the "
                                        "results.csv of this grid's runs finished elsewhere (e.g. a committed report's)"]
    assert not (tmp_path / "grid").exists()


def test_a_done_file_of_another_grid_is_refused(tmp_path, synthetic_corpus):
    config = _config(tmp_path, synthetic_corpus)
    other = _results(tmp_path / "other.csv", [("kfold-1", "whisper-attention", "clean", "n-cp", 0, "clean")])
    code, out = run_cli(["grid", str(config), "--done", str(other), "--seed", "1"])
    assert code == 2
    assert out.strip().splitlines() == [f"error: --done {other}: holds none of this grid's runs (its first run: "
                                        "kfold-1, whisper-attention, clean, n-cp, 0); give the results.csv of "
                                        "this grid's finished runs"]
    assert not (tmp_path / "grid").exists()
    # a slice's file may hold none of the slice, only other cells of the grid: taken, nothing skipped
    ours = _results(tmp_path / "ours.csv", [("default", "scratch", "clean", "none", 0, "clean")])
    grid = GridConfig.load(config)
    assert read_done(grid.restricted(seeds=[1]), [ours]).runs == {}
    assert list(read_done(grid, [ours]).runs) == [Cell("default", "scratch", "clean", "none", 0)]


def test_grid_rule_needs_a_report_and_is_checked_before_any_run(tmp_path, synthetic_corpus):
    config = _config(tmp_path, synthetic_corpus)
    code, out = run_cli(["grid", str(config), "--rule", str(RULE)])
    assert (code, out.strip()) == (2, "error: --rule: it governs the report; add --report DIR (or drop --rule)")
    (tmp_path / "rule.yaml").write_text("form: {}\n")
    code, out = run_cli(["grid", str(config), "--report", str(tmp_path / "r"), "--rule", str(tmp_path / "rule.yaml")])
    assert code == 2 and out.strip().splitlines() == [
        f"error: --rule: {tmp_path / 'rule.yaml'}: not a reporting rule (it needs the keys form, statistics, selection)"]
    assert not (tmp_path / "grid").exists() and not (tmp_path / "r").exists()


def test_a_reports_file_with_baseline_and_ensemble_rows_is_taken(tmp_path, synthetic_corpus):
    grid = GridConfig.load(_config(tmp_path, synthetic_corpus))
    report = _results(tmp_path / "report" / "results.csv", [
        ("default", "egemaps-svm", "clean", "none", "-", "clean"),       # baselines and scored-only rows
        ("default", "scratch+seed-ensemble", "clean", "none", "-", "clean"),  # have no seed
        ("default", "scratch", "clean", "none", 1, "clean")])
    assert list(read_done(grid, [report.parent]).runs) == [Cell("default", "scratch", "clean", "none", 1)]
    baselines_only = _results(tmp_path / "b.csv", [("default", "egemaps-svm", "clean", "none", "-", "clean")])
    code, out = run_cli(["grid", str(tmp_path / "grid.yaml"), "--done", str(baselines_only)])
    assert (code, out.strip()) == (2, f"error: --done {baselines_only}: holds none of this grid's runs (only "
                                      "baselines or seed ensembles); give the results.csv of this grid's finished runs")
    bad = _results(tmp_path / "c.csv", [("default", "egemaps-svm", "clean", "none", "-", "clean"),
                                        ("default", "scratch", "clean", "none", "-", "clean")])
    code, out = run_cli(["grid", str(tmp_path / "grid.yaml"), "--done", str(bad)])
    assert (code, out.strip()) == (2, f"error: {bad}:3: seed '-' is not a whole number; fix or drop that row")


def test_baselines_held_in_the_done_files_are_not_scored_again(tmp_path, synthetic_corpus, monkeypatch):
    import copypaste_ser.evaluation.baselines as baselines

    config = _config(tmp_path, synthetic_corpus, baseline=True)
    names = baselines.chosen_baselines(None)
    rows = [("default", name, "clean", "none", "-", "clean") for name in names]
    held = _results(tmp_path / "held.csv", rows + [("default", "scratch", "clean", "none", 0, "clean")])
    short = _results(tmp_path / "short.csv", rows[1:] + [("default", "scratch", "clean", "none", 0, "clean")])
    grid = GridConfig.load(config)
    assert read_done(grid, [held]).baselines_held and not read_done(grid, [short]).baselines_held
    assert read_done(grid, [short]).baselines_missing == (names[0],)
    assert read_done(grid, []).baselines_missing == tuple(names)  # no files: every baseline is scored here
    scored = []
    monkeypatch.setattr(baselines, "run_baseline", lambda g, progress=True, names=None: scored.append(names) or [])
    code, out = run_cli(["grid", str(config), "--done", str(held)])
    assert code == 0 and "baseline: every fold's scores are in the --done files; not scored again" in out, out
    assert scored == []
    code, out = run_cli(["grid", str(config), "--done", str(short)])
    # only the baseline the file lacks is scored; the report takes the others from the file
    assert code == 0 and f"baseline: scoring {names[0]} (the others' scores" in out and scored == [(names[0],)], out
    code, out = run_cli(["grid", str(config)])
    assert code == 0 and scored[-1] is None, out  # no --done: every installed baseline


def test_held_rows_come_from_the_first_file_holding_each_test(tmp_path, synthetic_corpus):
    from copypaste_ser.experiments.grid_done import held_rows

    config = _config(tmp_path, synthetic_corpus, snrs=[10], noise_root=str(tmp_path))
    run = ("default", "scratch", "clean", "none", 0)
    first = _results(tmp_path / "a" / "results.csv", [(*run, "clean")])
    second = _results(tmp_path / "b" / "results.csv", [(*run, "clean"), (*run, "10dB")])
    done = read_done(GridConfig.load(config), [first, second])
    rows, _ = held_rows(done)
    assert sorted(r["test"] for r in rows) == ["10dB", "clean"]
    assert [p for p, r in done.rows[Cell(*run)] if r["test"] == "clean"] == [first]
    assert held_rows(done.only(lambda cell: False)) == ([], {})


def test_rows_of_another_fold_assignment_are_refused(tmp_path, synthetic_corpus):
    from copypaste_ser.data.manifest import fold_test_fingerprint, load_corpus
    from copypaste_ser.evaluation.predictions_file import write_predictions

    grid = GridConfig.load(_config(tmp_path, synthetic_corpus, seeds=[0]))
    manifest, protocol = load_corpus(synthetic_corpus)
    run = ("default", "scratch", "clean", "none", 0, "clean")

    def held(name, test_set="", tested=None):
        path = tmp_path / name / "results.csv"
        path.parent.mkdir()
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, FIELDS + ["test_set"])
            writer.writeheader()
            writer.writerow({**dict(zip(FIELDS, run)), "weighted_f1": 0.5, "test_set": test_set})
        if tested is not None:
            write_predictions(path.parent / "predictions.json", {"|".join(map(str, run)): {i: ["a", "a"] for i in tested}})
        return path

    fold = protocol.fold()
    assert list(read_done(grid, [held("same", fold_test_fingerprint(manifest, fold.test))]).runs) == [Cell(*run[:5])]
    assert list(read_done(grid, [held("same-predictions", tested=fold.test)]).runs) == [Cell(*run[:5])]
    for name, path in [("fingerprint", held("other", fold_test_fingerprint(manifest, fold.dev))),
                       ("predictions", held("other-predictions", tested=fold.dev))]:
        with pytest.raises(UserError, match=f"--done {path}: run default/scratch/clean/none/0 tested other utterances "
                                            f"than fold default of .* holds now"):
            read_done(grid, [path])
