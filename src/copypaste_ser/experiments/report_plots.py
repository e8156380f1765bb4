"""The report's figures: scores by scheme, score against SNR, scores per fold, confusion matrices."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from copypaste_ser.evaluation.baselines import BASELINES
from copypaste_ser.metrics import draw_confusion

SCHEME_NAMES = {"none": "No CP", "se-cp": "SE-CP", "n-cp": "N-CP", "n+se-cp": "N+SE-CP"}
DATA_NAMES = {"clean": "Clean", "clean+noise": "Clean+Noise"}
#: Baselines as short axis labels.
BASELINE_SHORT = {"egemaps-svm": "eGeMAPS+SVM", "mfcc-lr": "MFCC probe", "rzstates-lr": "Resemblyzer probe",
                  "whisper-lr": "Whisper probe"}


def _index(rows: list[dict]) -> dict:
    """(init, data, scheme, test) -> {(fold, seed): weighted F1}."""
    idx: dict = defaultdict(dict)
    for r in rows:
        if r["init"] not in BASELINES:
            idx[(r["init"], r["training_data"], r["copypaste"], r["test"])][(r["fold"], r["seed"])] = r["weighted_f1"]
    return idx


def plot_report(rows: list[dict], out_dir: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = _index(rows)
    paths = []
    inits = list(dict.fromkeys(k[0] for k in idx))
    fig, axes = plt.subplots(1, len(inits), figsize=(5 * len(inits), 3.6), squeeze=False)
    for ax, init in zip(axes[0], inits):
        datas = [d for d in DATA_NAMES if any(k[:2] == (init, d) for k in idx)]
        schemes = [s for s in SCHEME_NAMES if any(k[0] == init and k[2] == s for k in idx)]
        width = 0.8 / max(1, len(datas))
        for j, d in enumerate(datas):
            vals = [np.array(list(idx.get((init, d, s, "clean"), {0: np.nan}).values())) * 100 for s in schemes]
            ax.bar(np.arange(len(schemes)) + j * width, [v.mean() for v in vals], width,
                   yerr=[v.std(ddof=1) if len(v) > 1 else 0 for v in vals], capsize=3, label=DATA_NAMES[d])
        for (name, label), style in zip(BASELINES.items(), (":", "--", "-.")):
            base = [r["weighted_f1"] for r in rows if r["init"] == name and r["test"] == "clean"]
            if base:
                ax.axhline(100 * np.mean(base), color="gray", linestyle=style, label=label)
        ax.set_xticks(np.arange(len(schemes)) + width * (len(datas) - 1) / 2, [SCHEME_NAMES[s] for s in schemes])
        ax.set(title=f"init {init}, clean test", ylabel="weighted F1 (%)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out_dir / "scores_by_scheme.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    tests = [t for t in ("clean", "10dB", "5dB", "0dB") if any(k[3] == t for k in idx)]
    if len(tests) > 1:
        fig, axes = plt.subplots(1, len(inits), figsize=(5 * len(inits), 3.6), squeeze=False)
        for ax, init in zip(axes[0], inits):
            for (i, d, s, _t) in sorted({k[:3] + (None,) for k in idx if k[0] == init}):
                ys = [np.mean(list(idx.get((i, d, s, t), {0: np.nan}).values())) * 100 for t in tests]
                ax.plot(tests, ys, marker="o", label=f"{SCHEME_NAMES[s]}, {DATA_NAMES[d]}",
                        color=f"C{list(SCHEME_NAMES).index(s)}", linestyle="-" if d == "clean" else "--")
            ax.set(title=f"init {init}", xlabel="test condition", ylabel="weighted F1 (%)")
            ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out_dir / "score_vs_snr.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    folds = plot_folds(rows, out_dir / "scores_by_fold.png")
    return paths + ([folds] if folds else [])


def fold_scores(rows: list[dict], init: str) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Clean training, clean test: the columns (schemes, then baselines) and, per fold, each
    column's weighted F1 (%), the mean over its seeds: what a paired test over folds compares."""
    seeds: dict = defaultdict(list)
    for r in rows:
        if r["test"] != "clean" or r.get("training_data") != "clean":
            continue
        if r["init"] == init:
            seeds[(r["fold"], SCHEME_NAMES.get(r["copypaste"], r["copypaste"]))].append(100 * float(r["weighted_f1"]))
        elif r["init"] in BASELINES:
            seeds[(r["fold"], BASELINE_SHORT.get(r["init"], r["init"]))].append(100 * float(r["weighted_f1"]))
    known = (*SCHEME_NAMES.values(), *(BASELINE_SHORT.get(b, b) for b in BASELINES))
    columns = [c for c in known if any(k[1] == c for k in seeds)]
    per_fold: dict = defaultdict(dict)
    for (fold, column), values in sorted(seeds.items()):
        per_fold[fold][column] = float(np.mean(values))
    return columns, dict(per_fold)


def plot_folds(rows: list[dict], path: Path) -> Path | None:
    """One panel per init: each fold a line through its columns, the mean over folds in black;
    None when no init has two folds (nothing to pair)."""
    scores = {i: fold_scores(rows, i) for i in dict.fromkeys(r["init"] for r in rows if r["init"] not in BASELINES)}
    panels = {i: s for i, s in scores.items() if len(s[1]) > 1}
    if not panels:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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

