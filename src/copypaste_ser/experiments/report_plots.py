"""The report's figures: scores by scheme, score against SNR, scores per fold, confusion matrices."""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np

from copypaste_ser.experiments.grid_results import baseline_name, baseline_names, baselines_of, is_baseline
from copypaste_ser.experiments.paper import SCHEMES as PAPER_SCHEMES
from copypaste_ser.experiments.paper import TABLES, table_number
from copypaste_ser.metrics import draw_confusion

#: Line styles of the baselines' levels, cycled when there are more baselines than styles.
BASELINE_STYLES = (":", "--", "-.", (0, (6, 2, 1, 2, 1, 2)))
SCHEME_NAMES = {"none": "No CP", "se-cp": "SE-CP", "n-cp": "N-CP", "n+se-cp": "N+SE-CP"}
DATA_NAMES = {"clean": "Clean", "clean+noise": "Clean+Noise"}
#: Baselines as short axis labels.
BASELINE_SHORT = {"egemaps-svm": "eGeMAPS+SVM", "mfcc-lr": "MFCC probe", "rzstates-lr": "Resemblyzer probe",
                  "whisper-lr": "Whisper probe"}


def _index(rows: list[dict]) -> dict:
    """(init, data, scheme, test) -> {(fold, seed): weighted F1}."""
    idx: dict = defaultdict(dict)
    for r in rows:
        if not is_baseline(r["init"]):
            idx[(r["init"], r["training_data"], r["copypaste"], r["test"])][(r["fold"], r["seed"])] = r["weighted_f1"]
    return idx


def seed_spread(values: dict) -> tuple[float, float]:
    """(mean over folds of the seed means, mean over folds of the std over seeds) x 100, from
    {(fold, seed): score}: a cell as the report's tables and figures give it (nan without runs)."""
    by_fold: dict = defaultdict(list)
    for (fold, _seed), v in values.items():
        by_fold[fold].append(100 * float(v))
    if not by_fold:
        return float("nan"), 0.0
    means = [np.mean(v) for v in by_fold.values()]
    stds = [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in by_fold.values()]
    return float(np.mean(means)), float(np.mean(stds))


def baseline_levels(rows: list[dict], test: str = "clean") -> dict[str, float]:
    """{baseline label: weighted F1 (%) on ``test``} for every baseline in ``rows``: the mean of its
    rows (deterministic, one per fold, so no seeds to spread over)."""
    levels = {}
    for name, label in baseline_names(rows).items():
        scores = [100 * float(r["weighted_f1"]) for r in rows if r["init"] == name and r["test"] == test]
        if scores:
            levels[label] = float(np.mean(scores))
    return levels


def paper_scores(paper: str | None, init: str, test: str, data: str, schemes: list[str]) -> list[float] | None:
    """The paper's numbers for these schemes (Table 2 / 3 / 5 / 6, as the score tables), or None."""
    scores = TABLES.get(paper or "", {}).get(table_number(init, test) or 0, {}).get(data)
    return [dict(zip(PAPER_SCHEMES, scores))[s] for s in schemes] if scores else None


def plot_report(rows: list[dict], out_dir: Path, paper: str | None = None) -> list[Path]:
    """The report's figures in ``out_dir``: scores by scheme, score against SNR, scores per fold;
    with ``paper`` (e.g. "crema-d") the paper's published numbers are drawn beside ours."""
    idx = _index(rows)
    paths = [plot_scores_by_scheme(rows, idx, out_dir / "scores_by_scheme.png", paper)]
    snr = plot_score_vs_snr(idx, out_dir / "score_vs_snr.png", paper)
    folds = plot_folds(rows, out_dir / "scores_by_fold.png")
    return paths + [p for p in (snr, folds) if p]


def plot_scores_by_scheme(rows: list[dict], idx: dict, path: Path, paper: str | None = None) -> Path:
    """One panel per init: each training data's clean-test score per scheme (mean, +- seed std),
    every baseline as a horizontal line, and the paper's Table 2 / 3 cell as a black diamond."""
    plt = pyplot()
    inits = list(dict.fromkeys(k[0] for k in idx))
    fig, axes = plt.subplots(1, len(inits), figsize=(5 * len(inits), 3.8), squeeze=False, sharey=True)
    schemes = [s for s in SCHEME_NAMES if any(k[2] == s for k in idx)]  # the same columns in every panel
    for ax, init in zip(axes[0], inits):
        datas = [d for d in DATA_NAMES if any(k[:2] == (init, d) for k in idx)]
        x = np.arange(len(schemes))
        offset = 0.3 / max(1, len(datas) - 1) if len(datas) > 1 else 0.0
        for j, d in enumerate(datas):
            at = x + (j - (len(datas) - 1) / 2) * offset
            means, spreads = zip(*(seed_spread(idx.get((init, d, s, "clean"), {})) for s in schemes))
            ax.errorbar(at, means, yerr=spreads, fmt="o", capsize=3, color=f"C{j}", label=f"ours, {DATA_NAMES[d]}")
            published = paper_scores(paper, init, "clean", d, schemes)
            if published:
                ax.plot(at, published, "D", markerfacecolor="none", color="black" if j == 0 else "0.45",
                        label=f"the paper, {DATA_NAMES[d]}")
        for (label, level), style in zip(baseline_levels(rows).items(), itertools.cycle(BASELINE_STYLES)):
            ax.axhline(level, color="gray", linestyle=style, linewidth=1, label=label)
        ax.set_xticks(x, [SCHEME_NAMES[s] for s in schemes])
        table = table_number(init, "clean") if paper_scores(paper, init, "clean", "clean", schemes) else None
        ax.set_title(f"init {init}, clean test" + (f" (the paper: Table {table})" if table else ""))
    axes[0][0].set_ylabel("weighted F1 (%)")
    axes[0][0].legend(fontsize=7)  # the same entries in every panel
    return save_figure(fig, path)


def plot_score_vs_snr(idx: dict, path: Path, paper: str | None = None) -> Path | None:
    """One panel per init: each cell's score on clean, 10 / 5 / 0 dB tests (None with one test);
    with ``paper``, the paper's Tables 3 / 5 / 6 as dotted lines in each scheme's colour."""
    tests = [t for t in ("clean", "10dB", "5dB", "0dB") if any(k[3] == t for k in idx)]
    if len(tests) < 2:
        return None
    plt = pyplot()
    inits = list(dict.fromkeys(k[0] for k in idx))
    fig, axes = plt.subplots(1, len(inits), figsize=(5 * len(inits), 3.8), squeeze=False)
    for ax, init in zip(axes[0], inits):
        cells = sorted({k[:3] for k in idx if k[0] == init}, key=lambda c: (c[1], list(SCHEME_NAMES).index(c[2])))
        for (i, d, s) in cells:
            color = f"C{list(SCHEME_NAMES).index(s)}"
            ax.plot(tests, [seed_spread(idx.get((i, d, s, t), {}))[0] for t in tests], marker="o", color=color,
                    label=f"{SCHEME_NAMES[s]}, {DATA_NAMES[d]}", linestyle="-" if d == "clean" else "--")
            published = [paper_scores(paper, init, t, d, [s]) for t in tests]
            if all(published):
                ax.plot(tests, [p[0] for p in published], linestyle=":", marker="D", markerfacecolor="none",
                        color=color, label=f"the paper, {SCHEME_NAMES[s]}, {DATA_NAMES[d]}")
        ax.set(title=f"init {init}", xlabel="test condition", ylabel="weighted F1 (%)")
        ax.legend(fontsize=6)
    return save_figure(fig, path)


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (reports are written where no display is)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` laid out tight, close it, and return ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    return path


def fold_scores(rows: list[dict], init: str) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Clean training, clean test: the columns (schemes, then baselines) and, per fold, each
    column's weighted F1 (%), the mean over its seeds: what a paired test over folds compares."""
    seeds: dict = defaultdict(list)
    for r in rows:
        if r["test"] != "clean" or r.get("training_data") != "clean":
            continue
        if r["init"] == init:
            seeds[(r["fold"], SCHEME_NAMES.get(r["copypaste"], r["copypaste"]))].append(100 * float(r["weighted_f1"]))
        elif is_baseline(r["init"]):
            seeds[(r["fold"], baseline_name(r["init"], BASELINE_SHORT))].append(100 * float(r["weighted_f1"]))
    known = (*SCHEME_NAMES.values(), *(baseline_name(b, BASELINE_SHORT) for b in baselines_of(rows)))
    columns = [c for c in known if any(k[1] == c for k in seeds)]
    per_fold: dict = defaultdict(dict)
    for (fold, column), values in sorted(seeds.items()):
        per_fold[fold][column] = float(np.mean(values))
    return columns, dict(per_fold)


def plot_folds(rows: list[dict], path: Path) -> Path | None:
    """One panel per init: each fold a line through its columns, the mean over folds in black;
    None when no init has two folds (nothing to pair)."""
    scores = {i: fold_scores(rows, i) for i in dict.fromkeys(r["init"] for r in rows if not is_baseline(r["init"]))}
    panels = {i: s for i, s in scores.items() if len(s[1]) > 1}
    if not panels:
        return None
    plt = pyplot()

    width = max(len(columns) for columns, _ in panels.values())
    fig, axes = plt.subplots(1, len(panels), figsize=(len(panels) * max(4.5, 1.5 + 0.8 * width), 3.8), squeeze=False)
    for ax, (init, (columns, per_fold)) in zip(axes[0], panels.items()):
        x = np.arange(len(columns))
        for fold in per_fold.values():
            ax.plot(x, [fold.get(c, np.nan) for c in columns], color="0.7", marker=".", linewidth=1)
        means = [np.nanmean([s.get(c, np.nan) for s in per_fold.values()]) for c in columns]
        ax.plot(x, means, color="black", marker="o", linewidth=2, label=f"mean of {len(per_fold)} folds")
        ax.set_xticks(x, columns, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"init {init}: each fold (grey), clean test", fontsize=10)
        ax.set_ylabel("weighted F1 (%)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_confusions(confusions: dict, path: Path) -> Path:
    """One row-normalised confusion matrix per init/data/scheme (clean test, summed over runs)."""
    plt = pyplot()

    keys = sorted(confusions, key=lambda k: (k.split("|")[0], k.split("|")[1],
                                             list(SCHEME_NAMES).index(k.split("|")[2])))
    cols = min(4, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, key in zip(axes.flat, keys):
        labels = confusions[key]["labels"]
        ax.axis("on")
        draw_confusion(ax, confusions[key]["confusion"], labels, annotate=False)
        ax.set(xlabel="", ylabel="")
        ax.set_xticks(range(len(labels)), [lab[:3] for lab in labels], fontsize=7, rotation=90)
        ax.set_yticks(range(len(labels)), [lab[:3] for lab in labels], fontsize=7)
        init, data, scheme = key.split("|")
        ax.set_title(f"{init}, {DATA_NAMES.get(data, data)}\n{SCHEME_NAMES.get(scheme, scheme)}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

