"""The paper's experiment grid: CopyPaste scheme x training data x initialisation x seed x fold.

A grid config (YAML)::

    data: data/emodb                 # prepared corpus folder
    out: runs/grid-emodb
    preset: cpu                      # training preset; `train:` overrides its fields
    train: {epochs: 30}
    copypaste: [none, se-cp, n-cp, n+se-cp]
    training_data: [clean, clean+noise]
    init: [scratch]                  # or a speaker model file, resemblyzer, resemblyzer-attention, whisper-attention, ssl-attention
    seeds: [0, 1, 2]
    folds: [default]                 # names, or "all", or a prefix like "loso-*"
    snrs: [10, 0]                    # noisy test conditions besides clean
    noise_root: ../shared/data/noise
    workers: 2                       # runs at a time; each uses `train.threads` torch threads

Each cell is a run folder ``out/<fold>/<init>/<data>/<scheme>/seed-<n>``. A finished cell
(complete run plus every noisy score) is skipped, an interrupted one resumes from its
last checkpoint, so running the grid again completes it. ``results.csv`` collects one row
per cell and condition. Runs go through a launcher (launchers.py): local processes, or a
Slurm job array with ``grid --launcher slurm`` (docs/ecosystem.md).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Collection, Sequence
from pathlib import Path

import yaml
from tqdm.auto import tqdm

from copypaste_ser.data.manifest import load_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.conditions import test_name, test_names
from copypaste_ser.experiments.grid_config import SLICE_KEYS, Cell, GridConfig, cell_config, cells
from copypaste_ser.experiments.grid_log import Invocation
from copypaste_ser.experiments.grid_rules import NAMED_INITS, REUSE_IGNORES, check_reuse
from copypaste_ser.experiments.launchers import make_launcher
from copypaste_ser.experiments.layer_weights import layer_weight_columns
from copypaste_ser.files.atomic import atomic_write_csv, atomic_write_text
from copypaste_ser.training.rundir import run_status


def cell_done(run: Path, snrs: list[float]) -> bool:
    """Trained, and scored on every test condition (plus the concat probe, if it applies)."""
    if run_status(run) != "complete" or not (run / "scores.json").is_file():
        return False
    scores = json.loads((run / "scores.json").read_text())
    return set(scores) == set(test_names(snrs)) and "probe" in scores["clean"]


def run_cell(grid: GridConfig, cell: Cell, force: bool = False) -> dict:
    """Train (or resume) one cell and score it on clean and noisy test data; ``force``: train
    it again when its run was made with another config (see gridrules.check_reuse)."""
    from copypaste_ser.evaluation.evaluate import concat_probe, evaluate_run, has_probe_pair, load_run, probe_applies
    from copypaste_ser.training.loop import train
    from copypaste_ser.training.rundir import config_changes, run_status, tested_elsewhere

    run = cell.path(Path(grid.out))
    cfg = cell_config(grid, cell)
    stale = bool(config_changes(run, cfg, REUSE_IGNORES)) or tested_elsewhere(run, cfg)
    if stale and not force:
        raise UserError(f"{run}: was trained with another config; pass --force to train it again")
    if stale or run_status(run) != "complete":
        train(cfg, run, force=stale, progress=False)
    scores = {"clean": json.loads((run / "metrics.json").read_text())}
    manifest, protocol = load_corpus(Path(grid.data))
    test = protocol.fold(cell.fold).test
    # the concat probe (evaluate --probe concat); None where it cannot pair two test speakers
    # (no neutral label, or a leave-one-speaker-out fold)
    scores["clean"]["probe"] = (concat_probe(load_run(run)[0], manifest, test, cfg)
                                if has_probe_pair(manifest, test) and probe_applies(cfg) else None)
    for snr in grid.snrs:
        scores[test_name(snr)] = evaluate_run(run, snr=snr, noise_root=grid.noise_root, progress=False)
    atomic_write_text(run / "scores.json", json.dumps(scores))
    return scores


def _worker(args: tuple) -> tuple[Cell, float]:
    """One grid job (any launcher): train and score one cell; a UserError names its run."""
    grid, cell, force = args
    t0 = time.time()
    try:
        run_cell(grid, cell, force=True) if force else run_cell(grid, cell)
    except UserError as e:
        raise _cell_failed(cell, Path(grid.out), e) from None
    return cell, time.time() - t0


def run_grid(grid: GridConfig, progress: bool = True, force: bool = False, launcher: str = "local",
             launcher_options: dict | None = None, done_elsewhere: Collection[Cell] = (),
             baselines: Sequence[str] | None = None) -> Path:
    """Run every unfinished cell (``grid.workers`` at a time, through ``launcher``: local
    processes or a Slurm array, see launchers.py), then write results.csv; ``force`` trains
    again the runs made with another config (gridrules.check_reuse); ``done_elsewhere``: cells
    not to run, finished on another machine (grid_done.py); ``baselines``: those to score (None: all)."""
    for init in grid.init:
        if init not in NAMED_INITS and not Path(init).is_file():
            raise UserError(f"grid: init model {init} is missing; train it with "
                            f"`copypaste-ser pretrain-speaker` or leave it out (--init scratch)")
    if grid.snrs or "clean+noise" in grid.training_data:  # the noise corpus's layout, before any write
        from copypaste_ser.data.corpora.musan import prepare_musan
        prepare_musan(Path(grid.noise_root))
    out = Path(grid.out)
    todo_all = cells(grid)  # reads only: a bad fold or a changed config is refused before any write
    stale = check_reuse({c: (c.path(out), cell_config(grid, c)) for c in todo_all}, force)
    claim_grid_folder(out)
    status, todo = "failed", []
    # the runs this invocation finished (trained and scored), counted for grid-log.jsonl
    invocation = Invocation.start(out, grid.workers, {k: getattr(grid, k) for k in SLICE_KEYS},
                                  completed=lambda: sum(cell_done(c.path(out), grid.snrs) for c in todo))
    try:
        atomic_write_text(out / "grid.yaml", yaml.safe_dump(dataclasses.asdict(grid.whole), sort_keys=False))
        todo = [c for c in todo_all if c not in done_elsewhere and (c in stale or not cell_done(c.path(out), grid.snrs))]
        if progress:
            elsewhere = sum(c in done_elsewhere for c in todo_all)
            print(f"grid: {len(todo_all)} runs, {len(todo_all) - len(todo) - elsewhere} already done, "
                  + (f"{elsewhere} done elsewhere, " if elsewhere else "") + f"{len(todo)} to run with {grid.workers} worker(s)")
        _prefill_features(grid, todo)
        _run_cells(grid, todo, progress, stale, launcher, launcher_options)
        if grid.baseline and (baselines is None or baselines):
            from copypaste_ser.evaluation.baselines import run_baseline
            run_baseline(grid.whole, progress=progress, names=baselines)  # every fold, whatever the slice
        collect(grid.whole)
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:  # grid-log.jsonl (gridlog.py); a killed invocation is logged by the next one
        invocation.finish(status)
    return out / "results.csv"


def _run_cells(grid: GridConfig, todo: list[Cell], progress: bool, stale: set[Cell],
               launcher: str = "local", options: dict | None = None) -> None:
    """Train and score ``todo`` through ``launcher`` (launchers.py), one job per run (the
    ``stale`` ones again from scratch); the first failure stops the rest."""
    runner = make_launcher(launcher, grid.workers, Path(grid.out) / "submitit", options)
    finished = 0
    with tqdm(total=len(todo), desc="grid", disable=None if progress else True, unit="run") as bar:
        def done(job: tuple, result: tuple[Cell, float]) -> None:
            nonlocal finished
            cell, secs = result
            finished += 1
            bar.update()
            bar.set_postfix_str(f"{cell.copypaste}/{cell.training_data} seed {cell.seed}: {secs:.0f} s")
            if progress and bar.disable:  # no terminal (a grid left running with its output in a log): a line a run
                print(f"grid: {finished}/{len(todo)} runs done; {cell.path(Path(grid.out))}: {secs:.0f} s",
                      flush=True)

        runner.run(_worker, [(grid, c, c in stale) for c in todo], done)


def _cell_failed(cell: Cell, out: Path, error: UserError) -> UserError:
    """The one-line error of a run that stopped the grid, naming the run."""
    return UserError(f"grid run {cell.path(out)} failed: {error}; fix it and run the grid again "
                     f"(finished runs are kept)")


def _prefill_features(grid: GridConfig, todo: list[Cell]) -> None:
    """Fill the feature caches once, before workers race to write the same files."""
    from copypaste_ser.features.cache import extract_features
    from copypaste_ser.training.task import make_task
    from copypaste_ser.training.trainset import load_train_features

    manifest, protocol = load_corpus(Path(grid.data))
    if not todo:
        return
    for feature_config in {cell_config(grid, c).feature_config for c in todo}:  # each init's own features
        extract_features(list(manifest), feature_config, Path(grid.data), progress=False)
    seen = set()
    for c in todo:
        key = (c.fold, c.training_data)
        if key in seen:
            continue
        seen.add(key)
        cfg = cell_config(grid, c)
        fold = protocol.fold(c.fold)
        load_train_features(cfg, manifest, make_task(cfg, manifest, protocol), progress=False)
        extract_features(manifest.subset(fold.dev + fold.test), cfg.feature_config, Path(grid.data), progress=False)
        for snr in grid.snrs:
            from copypaste_ser.evaluation.conditions import noisy_condition
            from copypaste_ser.training.held_out import TEST_VAD
            prefix, cond = noisy_condition(grid.noise_root, Path(grid.data), snr)
            extract_features(manifest.subset(fold.test), cfg.feature_config, Path(grid.data),
                             condition=prefix + cond.name, transform=cond, progress=False, vad_from=TEST_VAD)


def claim_grid_folder(out: Path) -> None:
    """Make ``out`` the grid's folder, or refuse a folder that is not one, before any write: a
    grid rewrites results.csv and grid.yaml there. A folder is a grid's if it carries the tool's
    marker (kind "grid"); one made before the marker existed if its grid.yaml names it as out."""
    from copypaste_ser.training.rundir import MARKER, folder_kind

    kind = folder_kind(out)
    if kind is None and (out / "grid.yaml").is_file():
        try:
            earlier = yaml.safe_load((out / "grid.yaml").read_text())
        except (OSError, yaml.YAMLError):
            earlier = None
        if isinstance(earlier, dict) and Path(str(earlier.get("out", ""))).resolve() == out.resolve():
            kind = ""  # a grid folder of an earlier version: adopted below
    if kind is None:
        raise UserError(f"{out}: is not a copypaste-ser grid folder (it holds other files); give the grid "
                        f"another out:")
    if kind not in ("", "grid"):
        raise UserError(f"{out}: is a copypaste-ser {kind} folder, not a grid folder; give the grid another out:")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file, not a folder; give the grid another out:")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out}: cannot create the grid folder ({e.strerror})") from None
    if not (out / MARKER).is_file():
        atomic_write_text(out / MARKER, json.dumps({"kind": "grid", "created": time.strftime("%Y-%m-%dT%H:%M:%S")}))


def collect(grid: GridConfig) -> list[dict]:
    """One row per finished cell and test condition, written to results.csv."""
    out = Path(grid.out)
    rows = []
    for c in cells(grid):
        run = c.path(out)
        if not (run / "scores.json").is_file():
            continue
        run_info = json.loads((run / "run.json").read_text())
        clean = json.loads((run / "metrics.json").read_text())
        dev_f1 = clean.get("dev_weighted_f1")  # the kept model's
        for cond, m in json.loads((run / "scores.json").read_text()).items():
            row = {"fold": c.fold, "init": c.init_name, "training_data": c.training_data,
                   "copypaste": c.copypaste, "seed": c.seed, "test": cond,
                   "weighted_f1": m["weighted_f1"], "uar": m["uar"], "accuracy": m["accuracy"],
                   "best_epoch": run_info.get("best_epoch"), "train_seconds": run_info.get("train_seconds"),
                   "dev_weighted_f1": dev_f1, "warnings": "; ".join(clean.get("warnings", [])) if cond == "clean" else "",
                   "speaker_norm": c.speaker_norm, "test_set": clean.get("test_set", "")}
            row.update({f"f1_{k}": v for k, v in m["per_class_f1"].items()}, **layer_weight_columns(clean))
            if m.get("vad"):  # where a noisy test's VAD came from (report.py flags rows without it)
                row["test_vad"] = m["vad"]
            if m.get("probe"):
                row.update(probe_kept=m["probe"]["emotion_kept_concat"],
                           probe_alone=m["probe"]["emotion_recall_alone"])
            rows.append(row)
    rows += _baseline_rows(out)
    _write_confusions(grid)
    if rows:
        atomic_write_csv(out / "results.csv", rows)
    return rows


def _baseline_rows(out: Path) -> list[dict]:
    f = out / "baseline" / "results.json"
    return json.loads(f.read_text()) if f.is_file() else []


def _write_confusions(grid: GridConfig) -> None:
    """Clean-test confusion matrices summed over seeds and folds, per init/data/scheme."""
    import numpy as np

    out = Path(grid.out)
    summed: dict[str, dict] = {}
    for c in cells(grid):
        f = c.path(out) / "metrics.json"
        if not f.is_file():
            continue
        m = json.loads(f.read_text())
        key = f"{c.init_name}|{c.training_data}|{c.copypaste}"
        entry = summed.setdefault(key, {"labels": m["labels"], "confusion": np.zeros_like(m["confusion"])})
        entry["confusion"] = entry["confusion"] + np.asarray(m["confusion"])
    for v in summed.values():
        v["confusion"] = v["confusion"].tolist()
    atomic_write_text(out / "confusions.json", json.dumps(summed))
