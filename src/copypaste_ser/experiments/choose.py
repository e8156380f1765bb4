"""Choose between grid configurations without a test speaker in view (nested selection).

Each candidate is a grid config whose runs are finished (a dev round). For every outer fold
the candidates are compared on that fold's own dev speakers: the mean ``dev_weighted_f1`` of
the kept models (``metrics.json``) over the runs every candidate finished in that fold (same
training data, CopyPaste scheme and seed), so no candidate wins by having run more or luckier
cells. The fold's test speakers are never read: the score of the mean over folds, which
earlier rounds used, mixes in dev groups that are other folds' test groups, so it is not
offered. With the paper split (one fold whose dev actors are never tested) this is a choice on
a never-tested development group.

The choice is written before any test score is read: ``choice.json`` (per fold: the chosen
config, every candidate's dev score and the runs compared) and one test grid config per chosen
candidate, restricted to the folds that chose it, whose runs are the candidate's own (same
``out``), so the test grid reuses them. ``copypaste-ser choose ... --run`` then runs those test
grids and their report in the same command. ``--earlier DIR`` lets a later candidate join a choice
already written (:class:`EarlierChoice`) without that choice's run folders.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from copypaste_ser.errors import UserError
from copypaste_ser.experiments.grid_config import Cell, GridConfig, cells
from copypaste_ser.experiments.grid_done import held_rows, read_done
from copypaste_ser.experiments.grid_results import as_number
from copypaste_ser.files.atomic import atomic_write_csv, atomic_write_text
from copypaste_ser.files.outputs import check_outputs, record_outputs

#: (training data, scheme, seed): one run of a fold, as compared across candidates.
RunKey = tuple[str, str, int]


@dataclass(frozen=True)
class FoldChoice:
    fold: str
    chosen: str                        # the candidate config's file name
    dev: dict[str, float]              # candidate -> mean dev weighted F1 over the matched runs
    runs: list[RunKey]                 # the runs every candidate finished in this fold


@dataclass(frozen=True)
class EarlierChoice:
    """The choice an earlier ``choose`` wrote (its ``--out`` folder): a new candidate can join it
    without its candidates' run folders, which need not outlive their test report."""
    folder: Path
    candidates: dict[str, str]         # name -> config path, as that choice recorded them
    folds: list[FoldChoice]


def load_earlier(folder: Path) -> EarlierChoice:
    """The choice in ``folder`` (``choice.json``); anything else is a one-line error."""
    path = Path(folder) / "choice.json"
    if not path.is_file():
        raise UserError(f"--earlier {folder}: no choice.json there; give the --out folder of an earlier "
                        f"`copypaste-ser choose`")
    try:
        record = json.loads(path.read_text())
        folds = [FoldChoice(f["fold"], f["chosen"], {n: float(v) for n, v in f["dev_weighted_f1"].items()},
                            [(str(d), str(s), int(seed)) for d, s, seed in f["runs"]]) for f in record["folds"]]
        candidates = {str(n): str(p) for n, p in record["candidates"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"{path}: not a choice.json written by `copypaste-ser choose` ({type(e).__name__}: {e})")
    if not folds or any(f.chosen not in f.dev or not f.runs for f in folds):
        raise UserError(f"{path}: a fold without runs or whose chosen config has no dev score; "
                        f"choose again with `copypaste-ser choose ... --out {folder} --force`")
    return EarlierChoice(Path(folder), candidates, folds)


def dev_scores(grid: GridConfig, held: Mapping[Cell, dict] | None = None) -> dict[str, dict[RunKey, float]]:
    """{fold: {(training data, scheme, seed): dev weighted F1}} of the grid's finished runs.
    Reads only the dev score of each run's ``metrics.json``, or, for a run finished elsewhere,
    of its row in ``held`` (grid_done.read_done)."""
    from copypaste_ser.training.rundir import run_status

    out: dict[str, dict[RunKey, float]] = defaultdict(dict)
    for cell in cells(grid):
        run = cell.path(Path(grid.out))
        if run_status(run) == "complete":
            dev = json.loads((run / "metrics.json").read_text()).get("dev_weighted_f1")
        elif cell in (held or {}):
            dev = as_number(held[cell].get("dev_weighted_f1"))
            dev = None if dev != dev else dev  # NaN: a row without a dev score
        else:
            continue
        if dev is not None:
            out[cell.fold][(cell.training_data, cell.copypaste, cell.seed)] = float(dev)
    return dict(out)


def choose_per_fold(candidates: dict[str, GridConfig], earlier: EarlierChoice | None = None,
                    held: Mapping[str, Mapping[Cell, dict]] | None = None) -> list[FoldChoice]:
    """One :class:`FoldChoice` per fold that every candidate has matched runs in; ties go to
    the candidate listed first. A fold without matched runs is a one-line error. With ``earlier``
    (an earlier choice over other candidates, :func:`load_earlier`) its folds are the folds, its
    candidates come first with their recorded dev scores, and the new candidates are scored on
    the same runs that choice compared, so the result is the choice over all of them at once.
    ``held``: {candidate: its runs finished elsewhere, with their rows} (``choose --done``)."""
    if len(candidates) < 1:
        raise UserError("choose: give at least one dev grid config")
    data = {str(Path(g.data).resolve()) for g in candidates.values()}
    if len(data) > 1:
        raise UserError(f"choose: the candidates use different corpora ({', '.join(sorted(data))}); "
                        f"compare configs of one corpus")
    scores = {name: dev_scores(g, (held or {}).get(name)) for name, g in candidates.items()}
    if earlier is not None:
        return [_extend(before, scores) for before in earlier.folds]
    folds = sorted(set().union(*(s.keys() for s in scores.values())))
    if not folds:
        raise UserError("choose: no candidate has a finished run; run the dev grids first")
    choices = []
    for fold in folds:
        matched = set.intersection(*(set(s.get(fold, {})) for s in scores.values()))
        if not matched:
            missing = [n for n, s in scores.items() if not s.get(fold)]
            raise UserError(f"choose: fold {fold!r} has no run that every candidate finished "
                            f"({', '.join(missing) or 'their runs differ'}); finish the dev grids first")
        runs = sorted(matched)
        dev = {name: float(np.mean([s[fold][k] for k in runs])) for name, s in scores.items()}
        choices.append(FoldChoice(fold, _best(dev), dev, runs))
    return choices


def _best(dev: dict[str, float]) -> str:
    """The candidate with the best dev score, the first listed on a tie (``max`` keeps the first)."""
    return max(dev, key=dev.__getitem__)


def _extend(before: FoldChoice, scores: dict[str, dict[str, dict[RunKey, float]]]) -> FoldChoice:
    """``before`` (an earlier choice in one fold) with the new candidates' dev scores over the runs it compared."""
    dev = dict(before.dev)
    for name, by_fold in scores.items():
        lacking = [k for k in before.runs if k not in by_fold.get(before.fold, {})]
        if lacking:
            data, scheme, seed = lacking[0]
            raise UserError(f"choose: {name} has not finished the run {data}/{scheme}/seed {seed} of fold "
                            f"{before.fold!r} that the earlier choice compared ({len(lacking)} such runs); "
                            f"finish its dev grid first (`copypaste-ser grid {name} --seed {seed}`)")
        dev[name] = float(np.mean([by_fold[before.fold][k] for k in before.runs]))
    return FoldChoice(before.fold, _best(dev), dev, before.runs)


def test_configs(choices: list[FoldChoice], configs: dict[str, Path], out_dir: Path) -> dict[str, str]:
    """{test config file name: YAML text}: each chosen candidate's own config, restricted to the
    folds that chose it, with its runs beside the candidate's (``<its out>.test-<out_dir name>``;
    :func:`run_tests` links the candidate's finished runs there first, so nothing is trained twice).
    Paths are written relative to ``out_dir``, where the file lives, so a repository keeps them."""
    by_config: dict[str, list[str]] = defaultdict(list)
    for c in choices:
        by_config[c.chosen].append(c.fold)
    out = {}
    for name, folds in by_config.items():
        raw = yaml.safe_load(configs[name].read_text())
        base = Path(os.path.abspath(configs[name])).parent
        source_out = base / raw["out"]
        for key in ("data", "noise_root"):
            if raw.get(key) is not None:
                raw[key] = _relative_to(out_dir, base / raw[key])
        raw["out"] = _relative_to(out_dir, source_out.with_name(f"{source_out.name}.test-{out_dir.resolve().name}"))
        raw["folds"] = folds
        header = (f"# Test grid of {name}, chosen on dev speakers by `copypaste-ser choose` for the folds "
                  f"below (choice.json).\n")
        out[f"test-{Path(name).stem}.yaml"] = header + yaml.safe_dump(raw, sort_keys=False, default_flow_style=None)
    return out


def _relative_to(folder: Path, path: Path) -> str:
    """``path`` from ``folder``, symbolic links kept as written (a ``data/x`` link stays ``data/x``,
    not the folder it points to on this machine)."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(folder))


def write_choice(configs: list[Path], out_dir: Path, force: bool = False, earlier: Path | None = None,
                 done: Mapping[str, list[Path]] | None = None) -> tuple[list[FoldChoice], list[Path]]:
    """Choose per fold and write ``choice.json`` and the test grid configs into ``out_dir``.
    ``earlier``: the folder of an earlier choice that ``configs`` join (:func:`choose_per_fold`);
    test grids are written only for the new candidates, where they win. ``done``: {candidate file
    name: results.csv files of its runs finished elsewhere} (their rows' dev scores stand in for
    run folders; a row does not say which config made it, so each file is given to one candidate)."""
    before = load_earlier(earlier) if earlier is not None else None
    if len(configs) < (1 if before else 2):  # one candidate leaves nothing to choose
        raise UserError(f"choose: {len(configs)} candidate config given; give two or more dev grid configs to "
                        f"choose between (a single config's test grid is run with `copypaste-ser grid`)")
    named = {}
    for path in configs:
        if path.name in named or (before and path.name in before.candidates):
            raise UserError(f"{path}: two candidates are named {path.name}; give each config its own file name")
        named[path.name] = path
    candidates = {name: GridConfig.load(path) for name, path in named.items()}
    if before is not None:
        if Path(out_dir).resolve() == before.folder.resolve():
            raise UserError(f"--out {out_dir}: that is the --earlier folder; give the extended choice a folder "
                            f"of its own so the earlier one stays as it was")
        _check_same_corpus(before, candidates)
    choices = choose_per_fold(candidates, before, held_elsewhere(candidates, done or {}))
    tests = test_configs([c for c in choices if c.chosen in named], named, out_dir)
    files = check_outputs([out_dir / "choice.json", *(out_dir / n for n in tests)], force, "--out")
    record = {"rule": "per outer fold, the best mean dev weighted F1 over the runs every candidate finished",
              "candidates": {**(before.candidates if before else {}), **{n: str(p) for n, p in named.items()}},
              **({"earlier": str(before.folder)} if before else {}),
              **({"done": {n: [str(f) for f in files] for n, files in done.items()}} if done else {}),
              "folds": [{"fold": c.fold, "chosen": c.chosen, "dev_weighted_f1": c.dev,
                         "runs": [list(k) for k in c.runs]} for c in choices]}
    atomic_write_text(out_dir / "choice.json", json.dumps(record, indent=1))
    for name, text in tests.items():
        atomic_write_text(out_dir / name, text)
    record_outputs(files)
    return choices, [out_dir / n for n in tests]


def held_elsewhere(candidates: dict[str, GridConfig], done: Mapping[str, list[Path]]) -> dict[str, dict[Cell, dict]]:
    """{candidate: {cell: clean-test row}} of the runs ``done`` gives each candidate (a file
    holding none of its candidate's runs is refused, as ``grid --done`` refuses it)."""
    unknown = sorted(set(done) - set(candidates))
    if unknown:
        raise UserError(f"--done {unknown[0]}=...: not one of the candidates ({', '.join(candidates)}); write "
                        f"--done CANDIDATE=FILE with the candidate's config file name")
    return {name: read_done(candidates[name], files).runs for name, files in done.items()}


def _check_same_corpus(before: EarlierChoice, candidates: dict[str, GridConfig]) -> None:
    """The earlier candidates' configs, where they can be read from here, use the new candidates' corpus."""
    new = {str(Path(g.data).resolve()) for g in candidates.values()}
    for name, path in before.candidates.items():
        if Path(path).is_file() and str(Path(GridConfig.load(Path(path)).data).resolve()) not in new:
            raise UserError(f"--earlier {before.folder}: its candidate {name} uses another corpus than "
                            f"{', '.join(candidates)}; extend a choice made on the same corpus")


def run_tests(choices: list[FoldChoice], configs: list[Path], test_files: list[Path], out_dir: Path,
              progress: bool = True, earlier: Path | None = None, done: Mapping[str, list[Path]] | None = None) -> Path:
    """Link each chosen candidate's finished runs of its folds into the test grid's folder, run
    the test grids (finishing any cell the dev round lacked) and write one report from them.
    ``earlier``: the folds where an earlier choice stands keep the test rows of its report;
    ``done`` (as :func:`write_choice`): the runs held there are not run, their rows join the report."""
    from copypaste_ser.experiments.grid import claim_grid_folder, run_grid
    from copypaste_ser.experiments.report import write_report
    from copypaste_ser.training.rundir import run_status

    named = {p.name: p for p in configs}
    results = []
    if earlier is not None:
        standing = {c.fold for c in choices if c.chosen not in named}
        results.append(standing_results(Path(earlier), standing, {c.fold for c in choices}, out_dir / "earlier"))
    for test_file in test_files:
        test = GridConfig.load(test_file)
        name = next(n for n in named if f"test-{Path(n).stem}.yaml" == test_file.name)
        source = GridConfig.load(named[name])
        claim_grid_folder(Path(test.out))  # before the links: a folder that is not a grid's is refused
        for fold in test.folds:
            _link_tree(Path(source.out) / fold, Path(test.out) / fold)
        held = read_done(test, (done or {}).get(name, []), require_match=False)
        # a run made here (linked from the dev round) is its own row; the files stand in for the rest
        held = held.only(lambda c: run_status(c.path(Path(test.out))) != "complete")
        run_grid(test, progress=progress, done_elsewhere=held.runs, baselines=held.baselines_to_score)
        if held.runs:
            results.append(_held_results(test, held, out_dir / "done" / test_file.stem))
        if (Path(test.out) / "results.csv").is_file():
            results.append(Path(test.out) / "results.csv")
    extra = (f" --earlier {earlier}" if earlier is not None else "") + "".join(
        f" --done {n}={f}" for n, files in (done or {}).items() for f in files)
    return write_report(results, out_dir / "report", "Test runs of the configs chosen on dev speakers",
                        command="copypaste-ser choose " + " ".join(str(p) for p in configs) + f"{extra} --out {out_dir} --run",
                        notes="Per fold, the config was chosen on that fold's dev speakers only (choice.json).",
                        update=True)


def standing_results(earlier: Path, standing: set[str], folds: set[str], out: Path) -> Path:
    """``out``/results.csv (+ predictions.json): the earlier choice's test report, its models' rows
    only in the ``standing`` folds (where its choice still wins), its baselines' in all ``folds``."""
    from copypaste_ser.evaluation.pooled import RUN_KEY
    from copypaste_ser.evaluation.predictions_file import read_predictions, write_predictions
    from copypaste_ser.experiments.grid_results import is_baseline, load_rows

    source = earlier / "report" / "results.csv"
    if not source.is_file():
        raise UserError(f"--earlier {earlier}: no report/results.csv; run that choice's test grids first "
                        f"(`copypaste-ser choose ... --out {earlier} --run`)")

    def kept(run: dict) -> bool:
        return run["fold"] in (folds if is_baseline(run["init"]) else standing)

    rows = [r for r in load_rows(source) if kept(r)]
    has_preds = (earlier / "report" / "predictions.json").is_file()
    files = check_outputs([out / "results.csv", *([out / "predictions.json"] if has_preds else [])], True, "--out")
    out.mkdir(parents=True, exist_ok=True)
    if has_preds:  # keyed by the "|"-joined run key
        preds = read_predictions(earlier / "report" / "predictions.json")
        write_predictions(out / "predictions.json",
                          {k: v for k, v in preds.items() if kept(dict(zip(RUN_KEY, k.split("|"))))})
    atomic_write_csv(out / "results.csv", rows)
    record_outputs(files)
    return out / "results.csv"


def _held_results(test: GridConfig, held, out: Path) -> Path:
    """``out``/results.csv (+ predictions.json): the rows of the test grid's runs held elsewhere."""
    from copypaste_ser.evaluation.predictions_file import write_predictions

    rows, preds = held_rows(held)
    files = check_outputs([out / "results.csv", *([out / "predictions.json"] if preds else [])], True, "--out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_csv(out / "results.csv", rows)
    if preds:
        write_predictions(out / "predictions.json", preds)
    record_outputs(files)
    return out / "results.csv"


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (else copy) the files of ``src`` under ``dst``; files already there are kept."""
    import os
    import shutil

    if not src.is_dir():
        return
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif not target.exists() and path.name != ".copypaste-ser.lock":
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)


def describe(choices: list[FoldChoice]) -> str:
    names = list(choices[0].dev) if choices else []
    lines = ["fold".ljust(24) + "".join(n[:22].rjust(24) for n in names) + "   chosen"]
    for c in choices:
        lines.append(c.fold[:24].ljust(24) + "".join(f"{100 * c.dev[n]:24.2f}" for n in names)
                     + f"   {c.chosen} ({len(c.runs)} runs)")
    return "\n".join(lines)


__all__ = ["FoldChoice", "EarlierChoice", "load_earlier", "standing_results", "dev_scores", "choose_per_fold", "test_configs", "write_choice", "run_tests", "describe"]
