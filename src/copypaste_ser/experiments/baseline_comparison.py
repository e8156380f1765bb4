"""Each trained model cell against each baseline of the same folds (``copypaste-ser
against-baselines``, and the report's "against the baselines" section).

A cell is (model, training data, CopyPaste scheme). Per fold its seeds are averaged first, then
the model minus the baseline is tested over the folds both hold: paired t and Wilcoxon, and Holm
over every comparison of one table (one test condition). The question: does the model beat, fold
by fold, for example a linear probe on the very encoder it is built on? Where the two share one
fold only (a single split such as CREMA-D's paper split), the paired bootstrap over that fold's
test utterances answers instead, when both have per-utterance predictions (evaluation.stats.compare)."""

from __future__ import annotations

import math
from pathlib import Path

from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.pooled import run_key
from copypaste_ser.evaluation.stats import FoldTest, compare, fold_test, holm
from copypaste_ser.experiments.grid_results import (
    as_number,
    baseline_names,
    is_baseline,
    labelled,
    merge_predictions,
    merge_results,
    read_sources,
)

SCHEMES = ("none", "se-cp", "n-cp", "n+se-cp")
#: ``reference_scheme`` that sets each cell against the reference's cell of the same scheme.
SAME_SCHEME = "same"


#: What a comparison scores: the test split's weighted F1, or the dev speakers' (each run's
#: ``dev_weighted_f1``: the score every choice may see, e.g. to judge an approximation).
SCORES = {"test": "weighted_f1", "dev": "dev_weighted_f1"}


def _cell_rows(rows: list[dict], init: str, data: str | None, scheme: str, test: str, score: str = "test") -> list:
    column = SCORES[score]  # a run without that score (older results: no dev score) takes no part
    return [r for r in rows if r["init"] == init and r["copypaste"] == scheme and r["test"] == test
            and (data is None or r.get("training_data", "clean") == data) and not math.isnan(as_number(r.get(column)))]


def _scores(rows: list[dict], init: str, data: str | None, scheme: str, test: str, score: str = "test") -> dict:
    return {(r["fold"], r["seed"]): 100 * float(r[SCORES[score]]) for r in _cell_rows(rows, init, data, scheme, test, score)}


def _one_fold_bootstrap(rows: list[dict], preds: dict, reference: tuple, system: tuple) -> FoldTest | None:
    """The paired bootstrap over the one fold two cells share ((init, data, scheme, test) each), as
    a FoldTest of one "fold" in points (t_p holds the bootstrap p); None without every run's predictions."""
    sides = [_cell_rows(rows, *cell) for cell in (reference, system)]
    scores = [{(r["fold"], r["seed"]): float(r["weighted_f1"]) for r in side} for side in sides]
    found = [{(r["fold"], r["seed"]): preds.get(run_key(r)) for r in side} for side in sides]
    if any(p is None for side in found for p in side.values()):
        return None
    c = compare(scores[0], scores[1], found[0], found[1])
    if c.method != "bootstrap":
        return None
    diff = 100 * c.mean_diff
    return FoldTest(diff, 100 * c.ci_low, 100 * c.ci_high, c.p, float("nan"), 1, (diff,))


def _folds_better(test: FoldTest) -> str:
    # on one shared fold the sign of the difference is already in the mean; "1/1" read as a count
    return "-" if test.n_folds < 2 else f"{sum(d > 0 for d in test.diffs)}/{test.n_folds}"


def _p(p: float) -> str:
    return "-" if math.isnan(p) else f"{p:.3g}"


def comparison_rows(rows: list[dict], models: list[str], baselines: list[str], test: str = "clean",
                    score: str = "test", reference_scheme: str = "none", preds: dict | None = None) -> list[dict]:
    """One dict per (model cell, baseline) with at least two shared folds, or one shared fold and
    every run's test predictions in ``preds`` (run key -> {utt: (true, predicted)}; test scores
    only): the test and its Holm-adjusted p over all of them. ``score`` test or dev (SCORES); the
    baselines' cells are their ``reference_scheme`` runs (a baseline's are none; a trained
    reference may have others; ``same``: the scheme of the cell compared)."""
    cells = sorted({(r["init"], r.get("training_data", "clean"), r["copypaste"]) for r in rows
                    if r["init"] in models and r["test"] == test},
                   key=lambda c: (models.index(c[0]), c[1], SCHEMES.index(c[2]) if c[2] in SCHEMES else 9))
    out = []
    for init, data, scheme in cells:
        model = _scores(rows, init, data, scheme, test, score)
        for base in baselines:
            # a baseline (eGeMAPS, a probe) has only No CP runs, whatever the trained reference's scheme
            against = "none" if is_baseline(base) else scheme if reference_scheme == SAME_SCHEME else reference_scheme
            t = fold_test(_scores(rows, base, None, against, test, score), model)
            if t.n_folds == 1 and preds and score == "test":
                t = _one_fold_bootstrap(rows, preds, (base, None, against, test), (init, data, scheme, test))
            elif t.n_folds < 2:
                t = None
            if t is not None:
                out.append({"model": init, "training_data": data, "copypaste": scheme, "baseline": base, "test": t})
    for row, p in zip(out, holm([r["test"].t_p for r in out])):
        row["holm_p"] = p
    return out


def against_baselines(rows: list[dict], models: list[str], baselines: dict[str, str], test: str = "clean",
                      score: str = "test", reference_scheme: str = "none", preds: dict | None = None) -> list[str]:
    """Markdown lines: every model cell against every baseline present (``baselines``: name ->
    what to call it; ``preds`` as :func:`comparison_rows`); empty when there is nothing to compare."""
    compared = comparison_rows(rows, models, list(baselines), test, score, reference_scheme, preds)
    if not compared:
        return []
    what = f"{test} test" if score == "test" else "dev speakers (each run's dev weighted F1)"
    lines = [f"## Against the baselines, {what}", "",
             "Model minus baseline, weighted F1 points over the folds both hold (seeds averaged within a "
             "fold first): mean, 95 % CI (t over folds), paired t p, Wilcoxon p, t p Holm-corrected over "
             f"the {len(compared)} comparisons of this table, folds where the model is better. Where the two "
             "share one fold, the CI and p are the paired bootstrap's over that fold's test utterances "
             "(each side's seeds averaged in every resample) and no fold count is shown.", "",
             "| model | training data | CopyPaste | baseline | folds | model - baseline | 95 % CI | p (t or bootstrap) "
             "| p (Wilcoxon) | p (Holm) | folds better |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in compared:
        t = r["test"]
        lines.append(f"| {r['model']} | {r['training_data']} | {r['copypaste']} | {baselines[r['baseline']]} "
                     f"| {t.n_folds} | {t.mean_diff:+.2f} | {t.ci_low:+.2f} to {t.ci_high:+.2f} | {_p(t.t_p)} "
                     f"| {_p(t.wilcoxon_p)} | {_p(r['holm_p'])} | {_folds_better(t)} |")
    return lines + [""]


def compare_with_baselines(paths: list[Path], test: str = "clean", reference: str | list[str] | None = None,
                           score: str = "test", reference_scheme: str = "none") -> str:
    """``copypaste-ser against-baselines``: the markdown table for the results files' rows; with
    ``reference`` (an init in them, e.g. the same model without speaker normalisation, or a
    ``LABEL=`` given to a file; or several, e.g. the frozen model and the probe), every other model
    against those instead of against the baselines (a trained reference's ``reference_scheme``
    cells), Holm over all of it; ``score`` dev compares the runs' dev scores instead of test."""
    references = [reference] if isinstance(reference, str) else list(reference or [])
    if score not in SCORES:
        raise UserError(f"--score {score!r}: choose test or dev")
    if reference_scheme not in (*SCHEMES, SAME_SCHEME):
        raise UserError(f"--reference-scheme {reference_scheme!r}: choose one of {', '.join(SCHEMES)} or "
                        f"{SAME_SCHEME} (each cell against the reference's cell of its own scheme)")
    if reference_scheme != "none" and not references:
        raise UserError("--reference-scheme: applies with --reference (a baseline has no CopyPaste scheme); "
                        "give --reference INIT")
    for arg in paths:
        path = labelled(arg)[1]
        if not path.is_file():
            raise UserError(f"{path}: no such results file; give a results.csv that a grid or report wrote")
    sources = read_sources(paths)  # each file read once
    rows = merge_results(sources)[0]
    tests = sorted({r["test"] for r in rows})
    if test not in tests:
        raise UserError(f"--test {test!r}: the results hold no such test; choose one of {', '.join(tests)}")
    scored = {r["init"] for r in rows if r.get("training_data") == "-"}  # `score` rows: finished models
    names = {r["init"] for r in rows}
    for ref in references:
        if ref not in names:
            raise UserError(f"--reference {ref!r}: no such init in the results; choose one of "
                            f"{', '.join(sorted(names))}")
    if references:
        baselines = {ref: ref for ref in references}
    else:
        baselines = baseline_names(rows)
    trained = {n for n in names if not is_baseline(n)}  # a probe is never a model, referenced or not
    models = sorted(trained - set(baselines) - scored) + sorted(scored)
    lines = against_baselines(rows, models, baselines, test, score, reference_scheme, merge_predictions(sources))
    if not lines:
        raise UserError(f"{', '.join(map(str, paths))}: no model and baseline share two folds (or one, with "
                        f"per-utterance predictions); run the baselines in the same folds (copypaste-ser "
                        f"baseline DATA --fold ...)")
    return "\n".join(lines)


__all__ = ["against_baselines", "comparison_rows", "compare_with_baselines", "labelled"]
