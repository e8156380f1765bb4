"""``train --fold all`` (or a pattern such as ``'loso-*'``): one training per fold and seed.

Runs go to ``OUT/<fold>/seed-N`` (one level per seed, always); ``OUT/results.csv``
and ``OUT/predictions.json`` are laid out like a grid's, so ``copypaste-ser report OUT``
tabulates them (per fold, mean +- std over folds, and pooled over folds: pooling.py).
``OUT/summary.json`` holds the same numbers as fractions (0-1), labelled as such.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from pathlib import Path

import numpy as np

from copypaste_ser.data.manifest import load_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.pooled import pooled_runs, run_key
from copypaste_ser.evaluation.predictions_file import write_predictions
from copypaste_ser.augment.reencode import join_suffix
from copypaste_ser.experiments.layer_weights import layer_weight_columns
from copypaste_ser.features.speaker_norm import norm_suffix
from copypaste_ser.files.atomic import atomic_write_csv, atomic_write_text
from copypaste_ser.training.config import TrainConfig
from copypaste_ser.validation import child_path


def is_fold_pattern(fold: str | None) -> bool:
    """``all`` or a shell pattern: train every matching fold."""
    return fold is not None and (fold == "all" or any(c in fold for c in "*?["))


def matching_folds(pattern: str, data: str | Path) -> list[str]:
    _, protocol = load_corpus(Path(data))
    names = protocol.names if pattern == "all" else [n for n in protocol.names if fnmatch.fnmatch(n, pattern)]
    if not names:
        raise UserError(f"--fold {pattern!r} matches none of the folds of {data} ({', '.join(protocol.names)})")
    return names


def init_name(init: str | None) -> str:
    if init is None:
        return "scratch"
    path = Path(init)
    if not path.suffix:  # a named init, or a model file without a suffix: its name, never a path
        return path.name
    return path.parent.name if path.stem == "model" else path.stem


def train_folds(cfg: TrainConfig, out_dir: str | Path, pattern: str, seeds: list[int], force: bool = False,
                progress: bool = True) -> dict:
    """Train ``cfg`` on every fold matching ``pattern``; results.csv, predictions.json and
    summary.json in ``out_dir``; returns the summary (with a printable ``text`` in %).

    Runs go to ``OUT/<fold>/seed-N`` whatever the number of seeds, so a later ``--seed`` adds
    runs beside the finished ones; finished runs of the same config are reused, a cut one
    resumes, and the tables are rewritten after each fold (``report`` can read them meanwhile).
    """
    import os

    from copypaste_ser.training.loop import train_seeds
    from copypaste_ser.training.rundir import claim

    out = Path(out_dir)
    folds = matching_folds(pattern, cfg.data)
    fold_dirs = {fold: child_path(out, fold, "fold name") for fold in folds}  # every name checked first
    rank0 = int(os.environ.get("RANK", "0")) == 0
    if rank0:
        claim(out, "folds", force, cfg.data)  # a user's folder is refused; --force clears the tool's runs
    rows: list[dict] = []
    preds: dict = {}
    for fold in folds:
        fold_cfg = dataclasses.replace(cfg, fold=fold)
        summary = train_seeds(fold_cfg, fold_dirs[fold], seeds=seeds, progress=progress, seed_folders=True)
        if not summary:  # not rank 0 under torchrun
            return {}
        for seed, run in finished_seeds(fold_dirs[fold], fold_cfg):
            metrics = json.loads((run / "metrics.json").read_text())
            row = _result_row(fold, seed, cfg, metrics)
            rows.append(row)
            preds[run_key(row)] = {p["id"]: [p["true"], p["pred"]] for p in metrics.get("predictions", [])}
        atomic_write_csv(out / "results.csv", rows)
        write_predictions(out / "predictions.json", preds)
    summary = summarize_folds(rows, preds)
    atomic_write_text(out / "summary.json", json.dumps({k: v for k, v in summary.items() if k != "text"}, indent=1))
    return summary


def finished_seeds(fold_dir: Path, cfg: TrainConfig) -> list[tuple[int, Path]]:
    """(seed, run folder) of every complete ``seed-N`` run in ``fold_dir`` made with ``cfg``
    (any seed): seeds added by later commands count, runs of another config do not."""
    from copypaste_ser.training.rundir import SEED_DIR, made_with, run_status

    found = []
    for run in sorted(fold_dir.iterdir(), key=lambda p: (len(p.name), p.name)):
        if not (SEED_DIR.fullmatch(run.name) and run_status(run) == "complete"):
            continue
        seed = int(run.name.split("-")[1])
        # as train's resume compares: a config written before a field was added has its default
        if made_with(run, dataclasses.replace(cfg, seed=seed)):
            found.append((seed, run))
    return found


def _result_row(fold: str, seed: int, cfg: TrainConfig, m: dict) -> dict:
    name = init_name(cfg.init) + norm_suffix(cfg.speaker_norm) + join_suffix(cfg.copypaste, cfg.copypaste_join)
    return {"fold": fold, "init": name,
            "training_data": "clean+noise" if cfg.noise_aug else "clean", "copypaste": cfg.copypaste,
            "seed": seed, "test": "clean", "weighted_f1": m["weighted_f1"], "uar": m["uar"],
            "accuracy": m["accuracy"], "best_epoch": m.get("best_epoch"),
            "train_seconds": m.get("train_seconds"), "dev_weighted_f1": m.get("dev_weighted_f1"),
            "warnings": "; ".join(m.get("warnings", [])), "speaker_norm": cfg.speaker_norm,
            "test_set": m.get("test_set", ""),
            **{f"f1_{k}": v for k, v in m["per_class_f1"].items()}, **layer_weight_columns(m)}


def summarize_folds(rows: list[dict], preds: dict) -> dict:
    """Per-fold weighted F1 (mean over seeds), mean +- std over folds, and pooled over folds."""
    folds: dict[str, list[float]] = {}
    for r in rows:
        folds.setdefault(r["fold"], []).append(float(r["weighted_f1"]))
    per_fold = {f: float(np.mean(v)) for f, v in folds.items()}
    vals = np.array(list(per_fold.values()))
    std = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    summary = {"units": "fractions (0-1); the text is in %", "per_fold_weighted_f1": per_fold,
               "mean_over_folds": float(vals.mean()), "std_over_folds": std}
    lines = [f"{f}: test weighted F1 {100 * v:.2f} %" for f, v in per_fold.items()]
    lines.append(f"mean over {len(vals)} folds: {100 * vals.mean():.2f} ± {100 * std:.2f} %")
    pooled = next(iter(pooled_runs([{**r, "seed": str(r["seed"])} for r in rows], preds).values()), None)
    if pooled:
        scores = [s["weighted_f1"] for s in pooled["seeds"].values()]
        n = next(iter(pooled["seeds"].values()))["n"]
        summary.update(pooled_weighted_f1=float(np.mean(scores)), pooled_utterances=n)
        lines.append(f"pooled over folds ({n} test utterances, each once): weighted F1 "
                     f"{100 * np.mean(scores):.2f} %" + (f" (mean of {len(scores)} seeds)" if len(scores) > 1 else ""))
    elif len(vals) > 1:
        lines.append("not pooled: the folds test some utterances twice (choose them with --fold 'loso-*')")
    summary["text"] = "\n".join(lines)
    return summary
