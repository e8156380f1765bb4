"""Seed ensembles of a grid: in each fold and cell (init, training data, scheme), the class
probabilities of the seeds' runs are averaged per utterance and scored as one model.

The grid's runs keep their test probabilities (``scores.json``; noisy tests in
``eval/<condition>/predictions.jsonl``), so a test ensemble costs no compute. The dev split
scores each run on its fold's dev speakers first (``evaluate_run(split="dev")``, kept in
``eval/dev-clean``), so that the choice between one seed and the ensemble can be made on dev.
The rows written are those of a grid's results.csv, with the init ``<init>+seed-ensemble`` and
the seed ``0+1+2``, so ``copypaste-ser report`` merges them with the grid's own rows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.evaluate import evaluate_run
from copypaste_ser.evaluation.pooled import run_key
from copypaste_ser.evaluation.predictions_file import write_predictions
from copypaste_ser.evaluation.stats import fold_test
from copypaste_ser.experiments.grid_results import ENSEMBLE_SUFFIX as SUFFIX
from copypaste_ser.experiments.grid_results import stored_test_predictions
from copypaste_ser.files.atomic import atomic_write_csv
from copypaste_ser.files.outputs import check_outputs, record_outputs
from copypaste_ser.metrics import score
from copypaste_ser.training.rundir import evaluation_dir

SPLITS = ("test", "dev")
DEV_CONDITION = "dev-clean"

# {utterance id: (true label, class probabilities)}
Probabilities = dict[str, tuple[str, list[float]]]


def run_probabilities(run: Path, split: str = "test",
                      evaluate: Callable[[Path], object] | None = None) -> tuple[list[str], dict[str, Probabilities]]:
    """A run's labels and {test name: probabilities} (test: every test condition it was
    scored on; dev: ``dev``, scored with ``evaluate`` first where it is not stored yet)."""
    try:
        tests = stored_test_predictions(run)
    except (OSError, ValueError, KeyError):
        raise UserError(f"{run}: no readable scores.json or noisy-test predictions (is the run finished?)") from None
    labels = next(iter(json.loads((run / "scores.json").read_text()).values()))["labels"]
    if split == "dev":
        stored = evaluation_dir(run, DEV_CONDITION) / "predictions.jsonl"
        if not stored.is_file():
            if evaluate is None:
                raise UserError(f"{run}: not scored on its dev speakers; run `copypaste-ser evaluate {run} --split dev`")
            evaluate(run)
        conditions = {"dev": [json.loads(x) for x in stored.read_text().splitlines() if x]}
    else:
        conditions = tests
    out = {}
    for name, preds in conditions.items():
        if any("probs" not in p for p in preds):
            raise UserError(f"{run}: the {name} predictions hold no probabilities (scored by an older version); "
                            f"evaluate the run again")
        out[name] = {p["id"]: (p["true"], p["probs"]) for p in preds}
    return labels, out


def ensemble_score(members: list[Probabilities], labels: list[str], weights: list[float] | None = None) -> dict:
    """Metrics of the mean of the members' probabilities (weighted by ``weights`` if given), on
    the utterances all of them scored, with the per-utterance predictions ({id, true, pred, probs})."""
    ids = sorted(set.intersection(*(set(m) for m in members)))
    if not ids:
        raise UserError("the ensemble's members share no scored utterance")
    probs = np.average([[m[i][1] for i in ids] for m in members], axis=0, weights=weights)
    index = {lab: k for k, lab in enumerate(labels)}
    y_true = [index[members[0][i][0]] for i in ids]
    y_pred = probs.argmax(axis=1).tolist()
    metrics = score(y_true, y_pred, labels)
    metrics["predictions"] = [{"id": i, "true": labels[t], "pred": labels[p], "probs": [round(float(x), 4) for x in q]}
                              for i, t, p, q in zip(ids, y_true, y_pred, probs)]
    return metrics


def grid_runs(grid: Path) -> dict[tuple[str, str, str, str], dict[str, Path]]:
    """(fold, init, training data, scheme) -> {seed: run folder} of a grid's finished runs."""
    runs: dict[tuple, dict[str, Path]] = defaultdict(dict)
    for scores in sorted(grid.glob("*/*/*/*/seed-*/scores.json")):
        run = scores.parent
        fold, init, data, scheme = run.parts[-5:-1]
        runs[(fold, init, data, scheme)][run.name.removeprefix("seed-")] = run
    return runs


def _row(cell: tuple, seeds: Iterable[str], test: str, metrics: dict, init: str) -> dict:
    fold, _, data, scheme = cell
    row = {"fold": fold, "init": init, "training_data": data, "copypaste": scheme,
           "seed": "+".join(sorted(seeds, key=int)), "test": test, "weighted_f1": metrics["weighted_f1"],
           "uar": metrics["uar"], "accuracy": metrics["accuracy"],
           "best_epoch": "", "train_seconds": 0.0}  # no training of its own: the members' is in their rows
    row.update({f"f1_{lab}": f for lab, f in metrics["per_class_f1"].items()})
    return row


def ensemble_grid(grid: str | Path, split: str = "test", seeds: list[str] | None = None,
                  progress: Callable[[Iterable], Iterable] = lambda it: it) -> tuple[list[dict], dict]:
    """results.csv rows and predictions of each cell's members (``seed`` = the run's seed) and
    of its seed ensemble (init ``<init>+seed-ensemble``), for cells with at least two of
    ``seeds`` (default: all the grid's seeds) finished in a fold."""
    grid = Path(grid)
    if split not in SPLITS:
        raise UserError(f"--split: must be one of {', '.join(SPLITS)}, not {split!r}")
    if not grid.is_dir():
        raise UserError(f"{grid}: no such grid folder (give a grid's out folder)")
    rows, preds = [], {}
    all_runs = grid_runs(grid)
    if seeds is not None:  # each asked-for seed once, and one the grid ran: else the error below would mislead
        have = sorted({s for runs in all_runs.values() for s in runs}, key=lambda s: (len(s), s))
        for i, s in enumerate(seeds):
            if s in seeds[:i]:
                raise UserError(f"--seed: seed {s} is given twice; give each seed once")
            if s not in have:
                raise UserError(f"--seed {s}: no finished run of seed {s!r} in {grid} (its seeds: "
                                f"{', '.join(have) or 'none'})")
        if len(seeds) < 2:
            raise UserError(f"--seed: an ensemble needs two or more seeds, not only {', '.join(seeds) or 'none'}; "
                            f"repeat --seed, or leave it out for all the grid's seeds")
    found = {cell: {s: r for s, r in runs.items() if seeds is None or s in seeds} for cell, runs in all_runs.items()}
    found = {cell: runs for cell, runs in found.items() if len(runs) >= 2}
    if not found:
        raise UserError(f"{grid}: no fold and cell has two finished seeds to ensemble")
    evaluate = (lambda run: evaluate_run(run, split="dev", progress=False)) if split == "dev" else None
    for cell, runs in progress(sorted(found.items())):
        members = {s: run_probabilities(r, split, evaluate) for s, r in runs.items()}
        labels = next(iter(members.values()))[0]
        for test in set.intersection(*(set(m[1]) for m in members.values())):
            for seed, (_, probs) in members.items():
                one = ensemble_score([probs[test]], labels)
                rows.append(_row(cell, [seed], test, one, cell[1]))
            metrics = ensemble_score([m[1][test] for m in members.values()], labels)
            row = _row(cell, members, test, metrics, cell[1] + SUFFIX)
            rows.append(row)
            preds[run_key(row)] = {p["id"]: [p["true"], p["pred"]] for p in metrics["predictions"]}
    return rows, preds


def summarize(rows: list[dict]) -> list[dict]:
    """Per cell and test: the mean over folds of the seed-averaged weighted F1 of the members,
    that of the ensemble, and the paired test over folds of the difference (stats.fold_test)."""
    cells: dict[tuple, dict[str, dict]] = defaultdict(lambda: {"members": {}, "ensemble": {}})
    for r in rows:
        init = r["init"].removesuffix(SUFFIX)
        side = "ensemble" if r["init"].endswith(SUFFIX) else "members"
        cells[(init, r["training_data"], r["copypaste"], r["test"])][side][(r["fold"], r["seed"])] = 100 * r["weighted_f1"]
    out = []
    for (init, data, scheme, test), c in sorted(cells.items()):
        t = fold_test(c["members"], c["ensemble"])
        out.append({"init": init, "training_data": data, "copypaste": scheme, "test": test, "folds": t.n_folds,
                    "members": float(np.mean(list(c["members"].values()))),
                    "ensemble": float(np.mean(list(c["ensemble"].values()))), "change": t.mean_diff,
                    "p": t.t_p, "folds_better": int(sum(d > 0 for d in t.diffs))})
    return out


def summary_table(summary: list[dict]) -> list[str]:
    """:func:`summarize`'s rows as a Markdown table."""
    lines = ["| init | training data | CopyPaste | test | folds | seeds (mean) | ensemble | change | p | folds better |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    return lines + [f"| {s['init']} | {s['training_data']} | {s['copypaste']} | {s['test']} | {s['folds']} | "
                    f"{s['members']:.2f} | {s['ensemble']:.2f} | {s['change']:+.2f} | {s['p']:.3f} | "
                    f"{s['folds_better']}/{s['folds']} |" for s in summary]


def write_ensemble(grid: str | Path, out: str | Path, split: str = "test", seeds: list[str] | None = None,
                   force: bool = False, progress: Callable[[Iterable], Iterable] = lambda it: it) -> list[dict]:
    """Write ``out/results.csv`` (members and ensembles) and ``out/predictions.json``; returns
    :func:`summarize`'s rows. Refuses to replace an earlier result without ``force``."""
    out = Path(out)
    # every file before any work (outputs.py): a user's file in OUT is never replaced
    files = check_outputs([out / "results.csv", out / "predictions.json"], force, "--out")
    rows, preds = ensemble_grid(grid, split, seeds, progress)
    atomic_write_csv(out / "results.csv", [r for r in rows if r["init"].endswith(SUFFIX)] if split == "test" else rows)
    write_predictions(out / "predictions.json", preds)
    record_outputs(files)
    return summarize(rows)
