"""Reading grids' results: results.csv rows, per-utterance predictions and clean-test
confusions, merged over slices of a grid run apart (the last file wins for a run found in several)."""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.baselines import BASELINES
from copypaste_ser.evaluation.pooled import RUN_KEY, run_key
from copypaste_ser.evaluation.predictions_file import read_predictions
from copypaste_ser.evaluation.same_tests import check_rows_same_tests, check_same_tests
from copypaste_ser.metrics import count_confusion
from copypaste_ser.training.rundir import evaluation_dir, grid_run_dir
from copypaste_ser.validation import check_name


def load_rows(results_csv: Path) -> list[dict]:
    """The rows of a results.csv, scores as floats; a score that is not a number in [0, 1] is a
    one-line error naming the line (a report of ``nan ± nan`` helps nobody)."""
    import io
    import math

    from copypaste_ser.files.textio import read_text

    reader = csv.DictReader(io.StringIO(read_text(results_csv), newline=""))
    rows = list(reader)
    missing = {"fold", "init", "training_data", "copypaste", "seed", "test", "weighted_f1"} - set(reader.fieldnames or [])
    if missing:
        raise UserError(f"{results_csv}: not a grid results.csv (no column {sorted(missing)[0]!r})")
    if not rows:
        raise UserError(f"{results_csv}: holds no results (only its header); give a results.csv with finished runs")
    for line, r in enumerate(rows, 2):
        if None in r:
            raise UserError(f"{results_csv}:{line}: more values than the header has columns; fix or drop that row")
        for k in RUN_KEY:  # a run's key names its folder beside results.csv (_run_predictions)
            check_name(r[k], k, f"{results_csv}:{line}")
        if r.get("train_seconds") not in ("", None) and not 0.0 <= as_number(r["train_seconds"]) < math.inf:
            raise UserError(f"{results_csv}:{line}: train_seconds is {r['train_seconds']!r}, not a number of "
                            f"seconds >= 0; fix or drop that row")
        for k, v in r.items():
            if k == "weighted_f1" or k.startswith("f1_") or k in ("uar", "accuracy"):
                if v in ("", None) and k != "weighted_f1":
                    r[k] = float("nan")  # a class some runs lack
                    continue
                try:
                    r[k] = float(v)
                except (TypeError, ValueError):
                    r[k] = float("nan")
                if not (0.0 <= r[k] <= 1.0) or math.isnan(r[k]):
                    raise UserError(f"{results_csv}:{line}: {k} is {v!r}, not a score between 0 and 1; "
                                    f"fix or drop that row")
    return rows


def as_number(text) -> float:
    """A results.csv cell as a float; NaN where it is empty or not a number (older results)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def is_baseline(init: str) -> bool:
    """Whether rows of ``init`` are a baseline (eGeMAPS + SVM, a linear probe), not a trained model
    (nor a model fused with a probe, ``X+fused-whisper-lr``)."""
    if scored_only(init):
        return False
    return init.rpartition(":")[2] in BASELINES or init.endswith("-lr")


def baselines_of(rows: list[dict]) -> list[str]:
    """The baselines of ``rows``: the known ones in their usual order, then labelled ones."""
    present = dict.fromkeys(r["init"] for r in rows if is_baseline(r["init"]))
    return [b for b in BASELINES if b in present] + [b for b in present if b not in BASELINES]


def baseline_name(init: str, short: dict[str, str] | None = None) -> str:
    """What a table calls a baseline (``short`` for axis labels): ``LABEL:whisper-lr`` (a probe
    named by ``LABEL=FILE``) reads "<its name> (LABEL)"."""
    label, _, base = init.rpartition(":")
    name = (short or BASELINES).get(base, base)
    return f"{name} ({label})" if label else name


def baseline_names(rows: list[dict]) -> dict[str, str]:
    """Each baseline of ``rows`` (in :func:`baselines_of`'s order) -> what a table calls it."""
    return {b: baseline_name(b) for b in baselines_of(rows)}


def results_source(arg: str | Path) -> tuple[str | None, Path, frozenset[str] | None]:
    """``[LABEL=]results.csv[@INIT,INIT...]`` -> (LABEL, path, the inits to take): the models of that
    file go by LABEL (``LABEL:init`` where it holds several), so two grids of one init (e.g. a frozen
    and a tuned encoder) are told apart; ``@INIT,...`` takes only those inits' rows (the block-3 runs
    of a file that also holds others, say), named as in the file before LABEL renames them; a folder
    stands for the results.csv in it. A path that exists as written is never split."""
    text = str(arg)
    label, sep, rest = text.partition("=")
    if not sep or Path(text).exists() or not label or "/" in label:
        label, rest = None, text
    inits = None
    if not Path(rest).exists() and "@" in rest:
        rest, _, names = rest.rpartition("@")
        inits = frozenset(n.strip() for n in names.split(",") if n.strip())
        if not inits:
            raise UserError(f"{text}: nothing after '@'; name the inits to take (FILE@plus,whisper-lr) or drop the '@'")
    path = Path(rest)
    return label, path / "results.csv" if path.is_dir() else path, inits


def labelled(arg: str | Path) -> tuple[str | None, Path]:
    """(LABEL, path) of a ``[LABEL=]results.csv[@INIT,...]`` argument (:func:`results_source`)."""
    return results_source(arg)[:2]


@dataclass(frozen=True)
class ResultsSource:
    """One ``[LABEL=]results.csv[@INIT,...]`` argument, its file read once."""

    arg: str
    label: str | None
    path: Path  #: the results.csv
    inits: frozenset[str] | None  #: the inits taken (all where None)
    rows: list[dict]  #: the file's rows of those inits, as read (not renamed)

    @classmethod
    def read(cls, arg: str | Path | ResultsSource) -> ResultsSource:
        if isinstance(arg, ResultsSource):
            return arg
        label, path, inits = results_source(arg)
        return cls(str(arg), label, path, inits, _rows_of(path, inits, arg))


def read_sources(results: Iterable[str | Path | ResultsSource]) -> list[ResultsSource]:
    """Each results argument read once, for :func:`merge_results` and :func:`merge_predictions`."""
    return [ResultsSource.read(a) for a in results]


def _rows_of(path: Path, inits: frozenset[str] | None, arg: str | Path) -> list[dict]:
    """The rows of ``path`` whose init is in ``inits`` (all where None); naming an init the file
    lacks is an error listing those it has."""
    rows = load_rows(path)
    if inits is None:
        return rows
    present = sorted({r["init"] for r in rows})
    if inits - set(present):
        raise UserError(f"{arg}: {path} holds no rows of init {sorted(inits - set(present))[0]!r}; "
                        f"it holds {', '.join(present)}")
    return [r for r in rows if r["init"] in inits]


def model_renames(rows: list[dict], label: str | None) -> dict[str, str]:
    """{init: the name it takes under ``label``} for the trained models of ``rows`` (none without a
    label); a file of baselines only (a probe on other training data, say) names them ``LABEL:init``,
    which stay baselines."""
    if not label:
        return {}
    models = sorted({r["init"] for r in rows if not is_baseline(r["init"])})
    if not models:
        return {b: f"{label}:{b}" for b in sorted({r["init"] for r in rows})}
    return {m: label if len(models) == 1 else f"{label}:{m}" for m in models}


def merge_results(results: Iterable[str | Path | ResultsSource]) -> tuple[list[dict], dict]:
    """Rows and clean-test confusions of several grids' results (each a path, ``LABEL=path`` or
    ``path@INIT,...``, :func:`results_source`); a run (fold, init, data, scheme, seed, test) or confusion key found in
    several files is taken from the last (:func:`clean_confusions` sums a key's runs again where
    their predictions exist)."""
    merged: dict[tuple, dict] = {}
    source: dict[tuple, Path] = {}
    confusions: dict = {}
    clashes: list[tuple] = []
    for source_file in read_sources(results):
        label, path, inits = source_file.label, source_file.path, source_file.inits
        rename = model_renames(source_file.rows, label)
        for read in source_file.rows:
            r = {**read, "init": rename.get(read["init"], read["init"])}
            key = tuple(r[k] for k in RUN_KEY)
            if key in merged and source[key] != path and merged[key]["weighted_f1"] != r["weighted_f1"]:
                clashes.append((key, source[key], path))
            merged[key], source[key] = r, path
        f = path.parent / "confusions.json"
        if f.is_file():
            confusions.update({_renamed_key(k, rename, 0): v for k, v in json.loads(f.read_text()).items()
                               if _of_inits(k, inits, 0)})
    check_rows_same_tests(merged.values(), {id(r): source[k] for k, r in merged.items()})
    if clashes:  # the same run named in two files with other scores: two models under one name?
        key, first, second = clashes[0]
        print(f"warning: {second} and {first} both hold run {'/'.join(map(str, key))} with other scores "
              f"({len(clashes)} such runs); {second}'s are used. If these are two models, report them apart "
              f"or compare them with `against-baselines LABEL=FILE ...`", file=sys.stderr)
    return list(merged.values()), confusions


ENSEMBLE_SUFFIX = "+seed-ensemble"  # init of seed_ensemble's rows: scored, never trained
FUSED_INFIX = "+fused-"  # init of probe_fusion's rows, <init>+fused-<probe>: scored, never trained


def scored_only(init: str) -> bool:
    """Whether rows of this init combine trained runs' scores (no training of their own)."""
    return init.endswith(ENSEMBLE_SUFFIX) or FUSED_INFIX in init


def stored_test_predictions(run: Path) -> dict[str, list[dict]]:
    """{test name: [{id, true, pred, probs}]} a run folder stored (clean test: scores.json;
    noisy: eval/<condition>/predictions.jsonl)."""
    scores = json.loads((run / "scores.json").read_text())
    return {name: s["predictions"] if name == "clean" else [
        json.loads(x) for x in (evaluation_dir(run, s["condition"]) / "predictions.jsonl").read_text().splitlines() if x]
        for name, s in scores.items()}


def _run_predictions(results_csv: Path, r: dict) -> dict | None:
    """{utt id: (true, predicted)} of one row's run, from its grid run folder beside ``results_csv``."""
    run = grid_run_dir(results_csv.parent, r["fold"], r["init"], r["training_data"], r["copypaste"], r["seed"])
    try:
        preds = stored_test_predictions(run)[r["test"]]
    except (OSError, KeyError, ValueError):
        return None
    return {p["id"]: (p["true"], p["pred"]) for p in preds} if preds else None


def _of_inits(key: str, inits: frozenset[str] | None, position: int) -> bool:
    """Whether a "|"-joined key's init (at ``position``) is one of ``inits`` (any where None)."""
    return inits is None or key.split("|")[position] in inits


def _renamed_key(key: str, rename: dict[str, str], position: int) -> str:
    """A "|"-joined key with its init (at ``position``) renamed."""
    parts = key.split("|")
    if len(parts) > position:
        parts[position] = rename.get(parts[position], parts[position])
    return "|".join(parts)


def merge_predictions(results: Iterable[str | Path | ResultsSource]) -> dict[str, dict]:
    """Per-utterance predictions of the runs of several results.csv ("|"-joined run key ->
    {utt id: [true, predicted]}): ``predictions.json`` beside a results.csv, else the grid's
    run folders and its baselines' predictions (``baseline/predictions.json``) there; the last
    file wins and labels rename, as in :func:`merge_results`. Runs of one fold that test
    different utterances (folds assigned differently) are refused (same_tests.py)."""
    merged: dict[str, dict] = {}
    origin: dict[str, str] = {}
    init_at = RUN_KEY.index("init")
    for source_file in read_sources(results):
        found = _file_predictions(source_file, init_at)
        merged.update(found)
        origin.update(dict.fromkeys(found, source_file.arg))
    check_same_tests(merged, origin)
    return merged


def _file_predictions(source_file: ResultsSource, init_at: int) -> dict[str, dict]:
    """One results file's run predictions, renamed and filtered as its argument says."""
    label, path, inits, rows = source_file.label, source_file.path, source_file.inits, source_file.rows
    f = path.parent / "predictions.json"
    rename = model_renames(rows, label)
    if f.is_file():
        return {_renamed_key(k, rename, init_at): v for k, v in read_predictions(f).items()
                if _of_inits(k, inits, init_at)}
    found: dict[str, dict] = {}
    grid_baselines = path.parent / "baseline" / "predictions.json"  # grid.py's run_baseline
    if grid_baselines.is_file():
        found.update({k: v for k, v in read_predictions(grid_baselines).items() if _of_inits(k, inits, init_at)})
    for r in rows:
        preds = None if is_baseline(r["init"]) else _run_predictions(path, r)
        if preds:
            found[_renamed_key(run_key(r), rename, init_at)] = preds
    return found


def clean_confusions(preds: dict[str, dict], known: dict) -> dict:
    """Clean-test confusions summed over the runs of ``preds`` (so slices with other seeds add
    up, where their confusions.json files would replace each other), rows in ``known``'s label order."""
    pairs: dict[str, list] = defaultdict(list)
    for key, utts in preds.items():
        run = dict(zip(RUN_KEY, key.split("|")))
        if run["test"] == "clean" and not is_baseline(run["init"]):
            pairs[f"{run['init']}|{run['training_data']}|{run['copypaste']}"] += [tuple(p) for p in utts.values()]
    fallback = next((v["labels"] for v in known.values()), None)
    out = {}
    for key, p in pairs.items():
        seen = sorted({x for pair in p for x in pair})
        labels = known.get(key, {}).get("labels") or (fallback if set(seen) <= set(fallback or ()) else seen)
        out[key] = {"labels": labels, "confusion": count_confusion(p, labels)}
    return out


def refuse_dropped_rows(existing: Path, rows: list[dict]) -> None:
    """A one-line error when ``existing`` (a results.csv) holds rows that ``rows`` lacks: a
    report never silently drops a seed, fold or cell that was reported before."""
    if not existing.is_file():
        return
    def key(r: dict) -> tuple:
        return tuple(str(r.get(k, "")) for k in ("fold", "init", "training_data", "copypaste", "seed", "test"))
    new = {key(r) for r in rows}
    lost = [k for k in map(key, load_rows(existing)) if k not in new]
    if lost:
        raise UserError(f"{existing}: the new report would drop {len(lost)} of its rows (e.g. "
                        f"{'/'.join(lost[0])}); give every results.csv they came from, or pass --force "
                        f"to drop them")
