"""Cross-validation scored the way the field does: test predictions pooled over the folds.

Mean +- std over folds weighs a fold of 20 utterances like one of 200, and a fold missing a
class gets a weighted F1 from the classes it has. Pooling concatenates the test predictions
of every fold of one seed (each utterance once, as its own fold's model predicted it) and
scores them as one test set: one weighted F1 and one confusion per seed, over the whole
corpus. Seeds then give mean +- std. Pooling is refused (None) when folds share a test
utterance, i.e. when the folds are not a partition of the corpus (a default split beside
LOSO folds, say): choose the folds with ``--fold 'loso-*'``.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from copypaste_ser.metrics import score

#: predictions of one run: utterance id -> (true label, predicted label)
Predictions = dict[str, tuple[str, str]]


def pool(by_fold: dict[str, Predictions]) -> Predictions | None:
    """One seed's test predictions of all folds, each utterance once; None when two folds test
    the same utterance."""
    pooled: Predictions = {}
    for preds in by_fold.values():
        for utt, pair in preds.items():
            if utt in pooled:
                return None
            pooled[utt] = tuple(pair)
    return pooled


def pooled_score(preds: Predictions, labels: list[str]) -> dict:
    """metrics.score of pooled predictions; labels not in ``labels`` are appended."""
    labels = list(labels) + sorted({x for p in preds.values() for x in p} - set(labels))
    index = {lab: i for i, lab in enumerate(labels)}
    pairs = list(preds.values())
    return score([index[t] for t, _ in pairs], [index[p] for _, p in pairs], labels)


#: the results.csv columns that name one run and test condition
RUN_KEY = ("fold", "init", "training_data", "copypaste", "seed", "test")


def run_key(row: dict) -> str:
    """A results.csv row's key in predictions.json (RUN_KEY joined by "|")."""
    return "|".join(str(row[k]) for k in RUN_KEY)


def pooled_runs(rows: list[dict], preds: dict[str, dict]) -> dict[tuple, dict]:
    """(init, data, scheme, test) -> {"seeds": {seed: score}, "folds": n} for every setting
    with two or more folds whose every run has predictions and whose folds partition."""
    groups: dict[tuple, dict[str, dict[str, Predictions]]] = defaultdict(lambda: defaultdict(dict))
    labels: dict[tuple, list[str]] = {}
    for r in rows:
        setting = (r["init"], r["training_data"], r["copypaste"], r["test"])
        groups[setting][str(r["seed"])][r["fold"]] = preds.get(run_key(r))
        labels.setdefault(setting, [k[3:] for k in r if k.startswith("f1_")])
    out = {}
    for setting, seeds in groups.items():
        folds = {f for s in seeds.values() for f in s}
        if len(folds) < 2 or any(set(s) != folds or None in s.values() for s in seeds.values()):
            continue  # a seed lacks a fold, or a run lacks its predictions: pooling would mislead
        pooled = {seed: pool(by_fold) for seed, by_fold in seeds.items()}
        if any(p is None for p in pooled.values()):
            continue
        out[setting] = {"folds": len(folds),
                        "seeds": {seed: pooled_score(p, labels[setting]) for seed, p in sorted(pooled.items())}}
    return out


def _mean_std(values: list[float]) -> str:
    v = 100 * np.asarray(values, dtype=float)
    return f"{v.mean():.2f} ± {v.std(ddof=1) if len(v) > 1 else 0:.2f}"


def pooled_section(rows: list[dict], preds: dict[str, dict], names: dict[str, str]) -> list[str]:
    """Markdown lines: pooled weighted F1 and UAR per setting, and the pooled confusion of
    each clean-test setting; empty when nothing can be pooled."""
    runs = pooled_runs(rows, preds)
    if not runs:
        return []
    lines = ["## Pooled over folds", "",
             "Test predictions of all folds of a seed scored together (every utterance once): "
             "weighted F1 and UAR (%), mean ± std over seeds; beside it the mean ± std over folds "
             "of the tables above weighs every fold alike whatever its size.", "",
             "| Init | Training data | CopyPaste | Test | Folds | Utterances | Pooled weighted F1 | "
             "Pooled UAR | Mean ± std over folds |", "|---|---|---|---|---|---|---|---|---|"]
    for (init, data, scheme, test), r in runs.items():
        scores = list(r["seeds"].values())
        by_fold: dict[str, list[float]] = defaultdict(list)
        for x in rows:
            if (x["init"], x["training_data"], x["copypaste"], x["test"]) == (init, data, scheme, test):
                by_fold[x["fold"]].append(float(x["weighted_f1"]))
        per_fold = [float(np.mean(v)) for v in by_fold.values()]  # seeds averaged within a fold
        lines.append(f"| {init} | {data} | {names.get(scheme, scheme)} | {test} | {r['folds']} | "
                     f"{scores[0]['n']} | {_mean_std([s['weighted_f1'] for s in scores])} | "
                     f"{_mean_std([s['uar'] for s in scores])} | {_mean_std(per_fold)} |")
    lines.append("")
    for (init, data, scheme, test), r in runs.items():
        if test == "clean":
            lines += confusion_lines(list(r["seeds"].values()), f"{init}, {data}, {names.get(scheme, scheme)}")
    return lines


def confusion_lines(scores: list[dict], title: str) -> list[str]:
    """The pooled confusion (counts summed over seeds; rows: true class) as a Markdown table."""
    labels = scores[0]["labels"]
    cm = np.sum([np.asarray(s["confusion"]) for s in scores], axis=0)
    lines = [f"Pooled confusion, {title} (rows true, columns predicted; counts summed over "
             f"{len(scores)} seed(s), recall in %):", "",
             "| true \\ predicted | " + " | ".join(labels) + " | recall |",
             "|---|" + "---|" * (len(labels) + 1)]
    for i, lab in enumerate(labels):
        total = cm[i].sum()
        recall = f"{100 * cm[i, i] / total:.1f}" if total else "–"
        lines.append(f"| {lab} | " + " | ".join(str(int(v)) for v in cm[i]) + f" | {recall} |")
    return lines + [""]
