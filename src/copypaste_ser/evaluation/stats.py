"""Significance of a system's change against a reference, as the reports state it.

The unit of replication is the test fold (a set of held-out speakers), not the run: runs
of several seeds in one fold share their test speakers, so they are averaged first
(:func:`fold_means`), and the paired difference system - reference is tested over folds
(:func:`fold_test`): a paired t-test and a Wilcoxon signed-rank test, with a t-based 95 %
confidence interval of the mean difference. The p-values of the cells of one table are
corrected together with Holm's step-down method (:func:`holm`).

A grid with one fold has nothing to replicate over; there the test is a paired bootstrap
over test utterances (:func:`paired_bootstrap`), which needs each run's per-utterance
predictions: the same resampled utterances score both systems (each averaged over its
seeds), so the spread of the difference reflects the test set, not the seeds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st
from sklearn.metrics import f1_score

#: (fold, seed) -> score of one run.
RunScores = Mapping[tuple[Hashable, Hashable], float]
NAN = float("nan")


def fold_means(scores: RunScores) -> dict[Hashable, float]:
    """Mean over the seeds of each fold: {(fold, seed): x} -> {fold: mean x}."""
    by_fold: dict[Hashable, list[float]] = defaultdict(list)
    for (fold, _seed), value in scores.items():
        by_fold[fold].append(float(value))
    return {fold: float(np.mean(v)) for fold, v in by_fold.items()}


def mean_ci(diffs: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """t-based confidence interval of the mean of ``diffs`` (NaN for fewer than two)."""
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2:
        return NAN, NAN
    half = st.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return float(d.mean() - half), float(d.mean() + half)


@dataclass(frozen=True)
class FoldTest:
    """Paired comparison over folds of seed-averaged scores (system - reference)."""
    mean_diff: float
    ci_low: float
    ci_high: float
    t_p: float          # two-sided paired t-test over folds
    wilcoxon_p: float   # two-sided Wilcoxon signed-rank over folds (exact for small n)
    n_folds: int
    diffs: tuple[float, ...]


def fold_test(reference: RunScores, system: RunScores) -> FoldTest:
    """Average seeds within each fold, then test the fold-mean differences over the folds
    both hold. p and CI are NaN with fewer than two folds; p is NaN when all differences
    are equal (a t-test is undefined) or, for Wilcoxon, all zero."""
    ref, sys = fold_means(reference), fold_means(system)
    folds = sorted(set(ref) & set(sys), key=str)
    d = np.array([sys[f] - ref[f] for f in folds])
    if len(d) == 0:
        return FoldTest(NAN, NAN, NAN, NAN, NAN, 0, ())
    t_p = w_p = NAN
    if len(d) >= 2 and not np.allclose(d, d[0]):
        t_p = float(st.ttest_1samp(d, 0.0).pvalue)
    if len(d) >= 2 and np.any(d != 0):
        w_p = float(st.wilcoxon(d).pvalue)
    lo, hi = mean_ci(d)
    return FoldTest(float(d.mean()), lo, hi, t_p, w_p, len(d), tuple(float(x) for x in d))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order. NaN entries (untested cells)
    stay NaN and do not count among the m tests."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), NAN)
    idx = np.flatnonzero(~np.isnan(p))
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The paper's metric, over the labels present in ``y_true`` or ``y_pred``."""
    return float(f1_score(y_true, y_pred, average="weighted", zero_division=0))


def _counted_weighted_f1(n_labels: int) -> Callable[[np.ndarray, np.ndarray], float]:
    """:func:`weighted_f1` for labels coded 0 .. n_labels - 1, from the confusion counts
    (2 TP / (support + predicted) per label, weighted by support; 0 where a label is never seen)."""
    def metric(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        cm = np.bincount(y_true * n_labels + y_pred, minlength=n_labels * n_labels).reshape(n_labels, n_labels)
        support, predicted = cm.sum(axis=1), cm.sum(axis=0)
        seen = support + predicted
        f1 = np.divide(2.0 * np.diag(cm), seen, out=np.zeros(n_labels), where=seen > 0)
        return float((support * f1).sum() / support.sum())
    return metric


@dataclass(frozen=True)
class BootstrapTest:
    """Paired bootstrap over test utterances of the seed-averaged metric (system - reference)."""
    mean_diff: float    # on the full test set
    ci_low: float       # percentile interval of the resampled differences
    ci_high: float
    p: float            # two-sided: 2 x the smaller tail of the resampled differences around 0
    n_utterances: int
    n_boot: int


def paired_bootstrap(y_true: Sequence[int], reference: Sequence[Sequence[int]], system: Sequence[Sequence[int]],
                     metric: Callable[[np.ndarray, np.ndarray], float] = weighted_f1,
                     n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> BootstrapTest:
    """Resample the test utterances with replacement ``n_boot`` times; each time score every
    seed's predictions of both systems on the same sample (``reference`` and ``system``:
    one list of predicted labels per seed, aligned with ``y_true``) and keep the difference
    of the seed means. ``p = min(1, 2 min(P(diff <= 0), P(diff >= 0)))`` with the usual
    +1 correction, so it is never 0."""
    y = np.asarray(y_true)
    a, b = np.asarray(reference), np.asarray(system)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != len(y) or b.shape[1] != len(y) or len(y) == 0:
        raise ValueError("predictions must be (seeds, utterances) aligned with y_true")
    if metric is weighted_f1:  # the same score from label counts: a report's bootstraps in seconds, not minutes
        labels, codes = np.unique(np.concatenate([y, a.ravel(), b.ravel()]), return_inverse=True)
        coded_y, coded_a, coded_b = np.split(codes, [len(y), len(y) + a.size])
        y, a, b = coded_y, coded_a.reshape(a.shape), coded_b.reshape(b.shape)
        metric = _counted_weighted_f1(len(labels))

    def diff(ix: np.ndarray) -> float:
        return (np.mean([metric(y[ix], s[ix]) for s in b]) - np.mean([metric(y[ix], s[ix]) for s in a]))

    rng = np.random.default_rng(seed)
    boots = np.array([diff(rng.integers(0, len(y), len(y))) for _ in range(n_boot)])
    tail = min((boots <= 0).sum(), (boots >= 0).sum())
    lo, hi = np.quantile(boots, [0.5 - level / 2, 0.5 + level / 2])
    return BootstrapTest(float(diff(np.arange(len(y)))), float(lo), float(hi),
                         float(min(1.0, 2 * (tail + 1) / (n_boot + 1))), len(y), n_boot)


#: Per-utterance predictions of one run: utterance id -> (true label, predicted label).
RunPredictions = Mapping[str, tuple[str, str]]


@dataclass(frozen=True)
class Comparison:
    """A system's change against a reference, tested the way its grid allows (``method``):
    ``"t"`` over folds (:func:`fold_test`), ``"bootstrap"`` over the utterances of one fold
    (:func:`paired_bootstrap`), or ``"none"`` (one fold and no per-utterance predictions)."""
    method: str
    mean_diff: float
    ci_low: float
    ci_high: float
    p: float
    wilcoxon_p: float
    n: int              # folds, or test utterances for the bootstrap


def compare(reference: RunScores, system: RunScores,
            reference_preds: Mapping[tuple, RunPredictions] | None = None,
            system_preds: Mapping[tuple, RunPredictions] | None = None, n_boot: int = 2000) -> Comparison:
    """Fold-level test where both systems share two folds or more; with one fold, the paired
    bootstrap over that fold's test utterances when every run of both has its predictions
    (keyed like the scores: (fold, seed)); else the change alone, untested."""
    ft = fold_test(reference, system)
    if ft.n_folds != 1:
        return Comparison("t", ft.mean_diff, ft.ci_low, ft.ci_high, ft.t_p, ft.wilcoxon_p, ft.n_folds)
    fold = next(iter(fold_means(reference).keys() & fold_means(system).keys()))
    runs = [[(reference_preds or {}).get(k) for k in reference if k[0] == fold],
            [(system_preds or {}).get(k) for k in system if k[0] == fold]]
    if any(p is None for side in runs for p in side):
        return Comparison("none", ft.mean_diff, NAN, NAN, NAN, NAN, 1)
    ids = sorted(set.intersection(*(set(p) for side in runs for p in side)))
    labels = sorted({lab for side in runs for p in side for i in ids for lab in p[i]})
    code = {lab: k for k, lab in enumerate(labels)}
    y = [code[runs[0][0][i][0]] for i in ids]
    pred = [[[code[p[i][1]] for i in ids] for p in side] for side in runs]
    b = paired_bootstrap(y, pred[0], pred[1], n_boot=n_boot)
    return Comparison("bootstrap", b.mean_diff, b.ci_low, b.ci_high, b.p, NAN, b.n_utterances)


def with_holm(comparisons: Mapping[Hashable, Comparison]) -> dict[Hashable, tuple[Comparison, float]]:
    """The cells of one table, each with its p Holm-corrected over the table's tested cells."""
    adjusted = holm([c.p for c in comparisons.values()])
    return {k: (c, p) for (k, c), p in zip(comparisons.items(), adjusted)}


def describe_tests(comparisons: Mapping[Hashable, tuple[Comparison, float]]) -> str:
    """One line for a table of :func:`with_holm` results: what its p-values test, or why
    there are none."""
    k = sum(p == p for _, p in comparisons.values())
    methods = {c.method for c, _ in comparisons.values()}
    n = max((c.n for c, _ in comparisons.values()), default=0)
    holm_k = f"Holm-corrected over the {k} cell(s) of this table"
    if methods == {"t"}:
        return (f"Tested: paired t-test over {n} folds of seed-averaged weighted F1 against No CP, {holm_k}; "
                "Wilcoxon p and 95 % CI in the statistics table.")
    if methods == {"bootstrap"}:
        return (f"Tested: one fold, so no fold-level test; paired bootstrap over the {n} test utterances of "
                f"seed-averaged weighted F1 against No CP, {holm_k}; 95 % CI in the statistics table.")
    if methods == {"none"}:
        return ("Not tested: one fold, so no fold-level test is possible, and there are no per-utterance "
                "predictions (results.csv holds none); the test would be a paired bootstrap over the test "
                "utterances of seed-averaged weighted F1, Holm-corrected over the cells of this table. "
                "The changes against No CP are shown without p.")
    return f"Tested: {', '.join(sorted(methods))} (see the statistics table), {holm_k}." if methods else ""
