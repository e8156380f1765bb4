"""Runs of a grid finished elsewhere: ``grid CONFIG --done FILE`` runs none of the cells FILE holds.

Run folders stay on the machine that trained them (a reset machine, a fresh clone, another
cluster node has none); the rows of finished runs travel, in a committed results.csv. Given
such files, the grid runs only the cells none of them holds, its own results.csv keeps only
its own runs, and ``report`` merges the two; where the files also hold every baseline's scores
(a committed report's do), the baselines are not scored again. A row does not say how its run
was made, so the files must come from this grid's config: the grid checks only that a cell's
rows cover every test condition it scores (clean and each ``snrs`` level), refuses a file that
holds none of its cells (another grid's), and says how many cells it took.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.conditions import test_names
from copypaste_ser.experiments.grid import Cell, GridConfig, cells
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
    baselines_held: bool  #: each baseline scored on every fold and test condition of the whole grid


def read_done(grid: GridConfig, given: list[Path], require_match: bool = True) -> DoneElsewhere:
    """The cells of ``grid`` that ``given`` (results.csv files or their folders) hold on every
    test condition the grid scores (the first file holding a cell gives its row), and whether
    they hold every baseline (a baseline depends on the data and folds only, so a fresh machine
    need not score it again). A file holding none of the grid's runs is refused unless not
    ``require_match`` (``choose`` hands every candidate all its files)."""
    from copypaste_ser.evaluation.baselines import chosen_baselines

    wanted_tests = set(test_names(grid.snrs))
    whole = grid.whole
    whole_keys = {_cell_key(c) for c in cells(whole)}
    tests: dict[tuple, set[str]] = {}
    clean: dict[tuple, dict] = {}
    scored: set[tuple[str, str, str]] = set()
    files = [results_file(f) for f in given]
    for original, path in zip(given, files):
        rows = load_rows(path)
        scored |= {(r["fold"], r["init"], r["test"]) for r in rows}
        # a report's file also holds baselines and ensembles (seed "-"): scores, not runs to skip
        numbered = [(line, r) for line, r in enumerate(rows, 2) if not (is_baseline(r["init"]) or scored_only(r["init"]))]
        runs = [r for _, r in numbered]
        keys = [_row_key(row, f"{path}:{line}") for line, row in numbered]  # the file's own line numbers
        if require_match and not whole_keys & set(keys):  # another grid's file: its rows would skip nothing
            first = (f" (its first run: {', '.join(map(str, keys[0]))})" if keys
                     else " (only baselines or seed ensembles)")
            raise UserError(f"--done {original}: holds none of this grid's runs{first}; "
                            f"give the results.csv of this grid's finished runs")
        for key, row in zip(keys, runs):
            tests.setdefault(key, set()).add(row["test"])
            if row["test"] == "clean":
                clean.setdefault(key, row)
    held = {c: clean[_cell_key(c)] for c in cells(grid) if wanted_tests <= tests.get(_cell_key(c), set())}
    baselines = {(c.fold, name, test) for c in cells(whole) for name in chosen_baselines(None)
                 for test in test_names(whole.snrs)}
    return DoneElsewhere(files, held, bool(files) and baselines <= scored)


def held_rows(grid: GridConfig, done: DoneElsewhere) -> tuple[list[dict], dict[str, dict]]:
    """The rows (every test condition) and predictions of the cells of ``grid`` that ``done``
    holds, from its files: what a report of ``grid`` merges for the runs it did not make."""
    from copypaste_ser.evaluation.pooled import run_key
    from copypaste_ser.evaluation.predictions_file import read_predictions

    wanted = {_cell_key(c) for c in done.runs}
    rows, preds, taken = [], {}, set()
    for path in done.files:
        found = [r for r in load_rows(path) if not (is_baseline(r["init"]) or scored_only(r["init"]))
                 and (key := _row_key(r, str(path))) in wanted and (key, r["test"]) not in taken]
        taken |= {(_row_key(r, str(path)), r["test"]) for r in found}
        rows += found
        beside = path.parent / "predictions.json"
        if beside.is_file():
            stored = read_predictions(beside)
            preds.update({run_key(r): stored[run_key(r)] for r in found if run_key(r) in stored})
    return rows, preds
