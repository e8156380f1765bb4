"""Late fusion of a grid's deep models with a linear probe fitted in the same fold.

In each fold the probe (``rzstates-lr`` or ``mfcc-lr`` of baseline.py) is fitted on the fold's
training speakers, its C chosen on the dev speakers as in the reports. Each finished run's class
probabilities are mixed with the probe's, ``w * model + (1 - w) * probe``, per utterance. The
weight is fixed, or chosen per run on its fold's dev speakers from :data:`WEIGHTS` (ties go to
the larger weight, so the model is kept unless dev says otherwise); no test score is seen.

Rows are those of a grid's results.csv with the init ``<init>+fused-<probe>`` and the run's own
seed, so ``copypaste-ser report`` merges them with the grid and averages seeds within a fold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from copypaste_ser.data.manifest import Fold, Manifest, load_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.baselines import baseline_features, fit_in_fold, grid_test_conditions
from copypaste_ser.evaluation.evaluate import evaluate_run
from copypaste_ser.evaluation.pooled import run_key
from copypaste_ser.evaluation.predictions_file import write_predictions
from copypaste_ser.experiments.grid_config import GridConfig
from copypaste_ser.experiments.grid_results import FUSED_INFIX
from copypaste_ser.experiments.seed_ensemble import Probabilities, ensemble_score, grid_runs, run_probabilities
from copypaste_ser.files.atomic import atomic_write_csv
from copypaste_ser.files.outputs import check_outputs, record_outputs

PROBES = ("rzstates-lr", "mfcc-lr")  # logistic regressions: they give class probabilities
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def probe_probabilities(grid: GridConfig, manifest: Manifest, fold: Fold, probe: str,
                        progress: bool = False) -> dict[str, Probabilities]:
    """{"dev" and each test name of the grid: the probe's probabilities} in one fold."""
    data = Path(grid.data)
    clf, _ = fit_in_fold(probe, manifest, fold, data, progress)
    columns = [int(c) for c in clf.classes_]  # a class absent from training has no column

    def probs(ids: list[str], condition: str = "clean", transform=None) -> Probabilities:
        x = baseline_features(probe, manifest, ids, data, condition, transform, progress=progress)
        full = np.zeros((len(ids), len(manifest.labels)))
        full[:, columns] = clf.predict_proba(x)
        return {i: (manifest[i].emotion, row.tolist()) for i, row in zip(ids, full)}

    out = {"dev": probs(fold.split("dev"))}
    for test_name, condition, transform in grid_test_conditions(grid):
        out[test_name] = probs(fold.test, condition, transform)
    return out


def mixed_score(model: Probabilities, probe: Probabilities, weight: float, labels: list[str]) -> dict:
    """Metrics and predictions of ``weight * model + (1 - weight) * probe`` on the utterances both scored."""
    return ensemble_score([model, probe], labels, weights=[weight, 1.0 - weight])


def choose_weight(model_dev: Probabilities, probe_dev: Probabilities, labels: list[str],
                  weights: Iterable[float] = WEIGHTS) -> tuple[float, float]:
    """(weight, dev weighted F1) of the best mixture on dev; ties go to the larger weight."""
    scored = [(mixed_score(model_dev, probe_dev, w, labels)["weighted_f1"], w) for w in weights]
    best_f1, best_w = max(scored)
    return best_w, best_f1


def fuse_grid(grid: GridConfig, probe: str = "rzstates-lr", weight: float | None = None,
              progress: Callable[[Iterable], Iterable] = lambda it: it) -> tuple[list[dict], dict, list[dict]]:
    """results.csv rows and predictions of every finished run fused with the probe, and the
    weight chosen for each run (with the dev weighted F1 of the model, the probe and the mixture)."""
    if probe not in PROBES:
        raise UserError(f"--probe: must be one of {', '.join(PROBES)} (they give probabilities), not {probe!r}")
    if weight is not None and not 0.0 <= weight <= 1.0:
        raise UserError(f"--weight: {weight} is not in [0, 1] (the model's share of the mixture)")
    runs = grid_runs(Path(grid.out))
    if not runs:
        raise UserError(f"{grid.out}: no finished run to fuse (run the grid first)")
    rows, preds, choices = [], {}, []
    manifest, protocol = load_corpus(Path(grid.data))
    probe_by_fold: dict[str, dict[str, Probabilities]] = {}
    evaluate = lambda run: evaluate_run(run, split="dev", progress=False)  # noqa: E731
    for (fold, init, data, scheme), seeds in progress(sorted(runs.items())):
        if fold not in probe_by_fold:
            probe_by_fold[fold] = probe_probabilities(grid, manifest, protocol.fold(fold), probe)
        probed = probe_by_fold[fold]
        for seed, run in sorted(seeds.items()):
            labels, dev = run_probabilities(run, "dev", evaluate)
            _, tests = run_probabilities(run, "test")
            w, fused_dev = (weight, mixed_score(dev["dev"], probed["dev"], weight, labels)["weighted_f1"]) \
                if weight is not None else choose_weight(dev["dev"], probed["dev"], labels)
            choices.append({"fold": fold, "init": init, "training_data": data, "copypaste": scheme, "seed": seed,
                            "weight": w, "dev_model": mixed_score(dev["dev"], probed["dev"], 1.0, labels)["weighted_f1"],
                            "dev_probe": mixed_score(dev["dev"], probed["dev"], 0.0, labels)["weighted_f1"],
                            "dev_fused": fused_dev})
            for test, model_probs in sorted(tests.items()):
                if test not in probed:
                    continue  # a test condition the grid no longer lists
                m = mixed_score(model_probs, probed[test], w, labels)
                row = {"fold": fold, "init": f"{init}{FUSED_INFIX}{probe}", "training_data": data, "copypaste": scheme,
                       "seed": seed, "test": test, "weighted_f1": m["weighted_f1"], "uar": m["uar"],
                       "accuracy": m["accuracy"], "best_epoch": "", "train_seconds": 0.0}
                row.update({f"f1_{lab}": f for lab, f in m["per_class_f1"].items()})
                rows.append(row)
                preds[run_key(row)] = {p["id"]: [p["true"], p["pred"]] for p in m["predictions"]}
    return rows, preds, choices


def write_fusion(config: str | Path, out: str | Path, probe: str = "rzstates-lr", weight: float | None = None,
                 force: bool = False, progress: Callable[[Iterable], Iterable] = lambda it: it) -> list[dict]:
    """Write ``out/results.csv``, ``out/predictions.json`` and ``out/weights.csv`` (the weight
    chosen for each run); returns the weights' rows. Refuses to replace a result without ``force``."""
    out = Path(out)
    # every file before any work (outputs.py): a user's file in OUT is never replaced
    files = check_outputs([out / "results.csv", out / "predictions.json", out / "weights.csv"], force, "--out")
    rows, preds, choices = fuse_grid(GridConfig.load(config), probe, weight, progress)
    atomic_write_csv(out / "results.csv", rows)
    write_predictions(out / "predictions.json", preds)
    atomic_write_csv(out / "weights.csv", choices)
    record_outputs(files)
    return choices
