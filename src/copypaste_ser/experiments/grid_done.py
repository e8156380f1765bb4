"""Runs of a grid finished elsewhere: ``grid CONFIG --done FILE`` runs none of the cells FILE holds.

Run folders stay on the machine that trained them (a reset machine, a fresh clone, another
cluster node has none); the rows of finished runs travel, in a committed results.csv. Given
such files, the grid runs only the cells none of them holds, its own results.csv keeps only
its own runs, and ``report`` merges the two; the baselines are scored only where the files
lack them (a committed report's hold them all). A row does not say how its run
was made, so the files must come from this grid's config: the grid checks only that a cell's
rows cover every test condition it scores (clean and each ``snrs`` level), refuses a file that
holds none of its cells (another grid's), and says how many cells it took.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.conditions import test_names
from copypaste_ser.experiments.grid_config import Cell, GridConfig, cells
from copypaste_ser.experiments.grid_results import is_baseline, load_rows, scored_only


def _cell_key(cell: Cell) -> tuple:
    return cell.fold, cell.init_name, cell.training_data, cell.copypaste, cell.seed


def _row_key(row: dict, where: str) -> tuple:
    try:
        seed = int(float(row["seed"]))
    except ValueError:
        raise UserError(f"{where}: seed {row['seed']!r} is not a whole number; fix or drop that row") from None
    return row["fold"], row["init"], row["training_data"], row["copypaste"], seed


def results_file(path: Path) -> Path:
    """A results.csv given as itself or as the folder holding it (a report's or a grid's)."""
    path = Path(path)
    found = path / "results.csv" if path.is_dir() else path
    if not found.is_file():
        raise UserError(f"--done {path}: no results.csv there; give the results.csv of this grid's runs "
                        f"finished elsewhere (e.g. a committed report's)")
    return found


@dataclass(frozen=True)
class DoneElsewhere:
    """What ``--done`` files hold for a grid, read in one pass."""

    files: list[Path]  #: the results.csv files, resolved
    runs: dict[Cell, dict]  #: {cell: its clean-test row}, for each cell held on every test condition
    #: the baselines some fold or test condition of the whole grid lacks in the files (all where no files)
    baselines_missing: tuple[str, ...]
    #: {cell: [(file, row)] one per test condition}: the rows of ``runs`` (the first file holding each)
    rows: dict[Cell, list[tuple[Path, dict]]] = field(default_factory=dict)
    #: {file: the predictions.json beside it} as read so far (each read once)
    beside: dict[Path, dict] = field(default_factory=dict, repr=False, compare=False)

    def predictions_beside(self, path: Path) -> dict:
        """The run predictions stored beside results file ``path`` ({} where none)."""
        from copypaste_ser.evaluation.predictions_file import read_predictions

        if path not in self.beside:
            found = path.parent / "predictions.json"
            self.beside[path] = read_predictions(found) if found.is_file() else {}
        return self.beside[path]

    @property
    def baselines_to_score(self) -> tuple[str, ...] | None:
        """What ``run_grid(baselines=...)`` takes: those the files lack, or None (all) without files."""
        return self.baselines_missing if self.files else None

    @property
    def baselines_held(self) -> bool:
        """Each baseline scored on every fold and test condition of the whole grid."""
        return bool(self.files) and not self.baselines_missing

    def only(self, keep) -> DoneElsewhere:
        """The same files holding only the cells for which ``keep(cell)`` is true."""
        runs = {c: r for c, r in self.runs.items() if keep(c)}
        return replace(self, runs=runs, rows={c: self.rows[c] for c in runs})


def read_done(grid: GridConfig, given: list[Path], require_match: bool = True) -> DoneElsewhere:
    """The cells of ``grid`` that ``given`` (results.csv files or their folders) hold on every
    test condition the grid scores (the first file holding a cell's test gives its row), and the
    baselines they lack (a baseline depends on the data and folds only, so a fresh machine scores
    only those). A file holding none of the grid's runs is refused unless not ``require_match``
    (``choose`` hands every candidate all its files)."""
    from copypaste_ser.evaluation.baselines import chosen_baselines

    wanted_tests = set(test_names(grid.snrs))
    whole = grid.whole
    whole_cells = cells(whole)
    whole_keys = {_cell_key(c) for c in whole_cells}
    found: dict[tuple, dict[str, tuple[Path, dict]]] = {}  # {cell key: {test: (file, row)}}
    scored: set[tuple[str, str, str]] = set()
    files = [results_file(f) for f in given]
    for original, path in zip(given, files):
        rows = load_rows(path)
        scored |= {(r["fold"], r["init"], r["test"]) for r in rows}
        # a report's file also holds baselines and ensembles (seed "-"): scores, not runs to skip
        numbered = [(line, r) for line, r in enumerate(rows, 2) if not (is_baseline(r["init"]) or scored_only(r["init"]))]
        keys = [_row_key(row, f"{path}:{line}") for line, row in numbered]  # the file's own line numbers
        if require_match and not whole_keys & set(keys):  # another grid's file: its rows would skip nothing
            first = (f" (its first run: {', '.join(map(str, keys[0]))})" if keys
                     else " (only baselines or seed ensembles)")
            raise UserError(f"--done {original}: holds none of this grid's runs{first}; "
                            f"give the results.csv of this grid's finished runs")
        for key, (_, row) in zip(keys, numbered):
            found.setdefault(key, {}).setdefault(row["test"], (path, row))
    held = [c for c in cells(grid) if wanted_tests <= set(found.get(_cell_key(c), {}))]
    folds = {c.fold for c in whole_cells}
    missing = [name for name in chosen_baselines(None) if not files or any(
        (fold, name, test) not in scored for fold in folds for test in test_names(whole.snrs))]
    done = DoneElsewhere(files, {c: found[_cell_key(c)]["clean"][1] for c in held}, tuple(missing),
                         {c: list(found[_cell_key(c)].values()) for c in held})
    _check_same_folds(grid, done)
    return done


def _check_same_folds(grid: GridConfig, done: DoneElsewhere) -> None:
    """A one-line error where a held run tested other utterances than its fold of ``grid.data``
    holds now (rows of another fold assignment would stand in for runs never made on this one):
    its row's ``test_set``, else the ids in the predictions.json beside its file."""
    from copypaste_ser.data.manifest import load_corpus
    from copypaste_ser.evaluation.pooled import run_key
    from copypaste_ser.evaluation.same_tests import same_utterances
    from copypaste_ser.training.rundir import fold_fingerprint

    fingerprints: dict[str, str] = {}  # per fold, computed once
    test_ids: dict[str, set[str]] = {}
    for cell, pairs in done.rows.items():
        for path, row in pairs:
            if row.get("test_set"):
                if cell.fold not in fingerprints:
                    fingerprints[cell.fold] = fold_fingerprint(grid.data, cell.fold)
                differs = row["test_set"] != fingerprints[cell.fold]
            else:  # rows written before the column: the predictions say which utterances were tested
                tested = done.predictions_beside(path).get(run_key(row))
                if tested is not None and cell.fold not in test_ids:
                    test_ids[cell.fold] = set(load_corpus(Path(grid.data))[1].fold(cell.fold).test)
                differs = tested is not None and not same_utterances(set(tested), test_ids[cell.fold])
            if differs:
                run = "/".join(map(str, _cell_key(cell)))
                raise UserError(f"--done {path}: run {run} tested other utterances than fold {cell.fold} of "
                                f"{grid.data} holds now (another fold assignment); give rows made on this "
                                f"data folder, or leave that file out")


def held_rows(done: DoneElsewhere) -> tuple[list[dict], dict[str, dict]]:
    """The rows (every test condition) and predictions of the cells ``done`` holds, from its
    files: what a report of the grid merges for the runs it did not make."""
    from copypaste_ser.evaluation.pooled import run_key

    taken = [pair for c in done.runs for pair in done.rows[c]]
    preds: dict[str, dict] = {}
    for path, row in taken:
        key, stored = run_key(row), done.predictions_beside(path)
        if key in stored:
            preds[key] = stored[key]
    return [r for _, r in taken], preds
