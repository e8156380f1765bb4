"""Which encoder blocks a learned mix reads (``encoder_mix``): each run's softmax weights over the
blocks, carried into results.csv as ``layer_weight_<block>`` columns, then a report table (mean
over a model's runs) and a bar chart. The weights sum to 1, so 1/n for n blocks is "no preference"."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from copypaste_ser.experiments.grid_results import as_number, is_baseline
from copypaste_ser.experiments.report_plots import SCHEME_NAMES, pyplot, save_figure
from copypaste_ser.training.loop import summarize

PREFIX = "layer_weight_"


def layer_weight_columns(metrics: dict) -> dict[str, float]:
    """A run's ``metrics.json`` -> its results.csv columns ``layer_weight_<block>`` (none for a model
    without a learned mix)."""
    return {f"{PREFIX}{block}": w for block, w in (metrics.get("layer_weights") or {}).items()}


def mean_layer_weights(rows: list[dict]) -> dict[tuple[str, str, str], dict[int, np.ndarray]]:
    """(init, training data, scheme) -> {block: that block's weight in each run}, from the clean-test
    rows of trained models that carry weights."""
    found: dict[tuple[str, str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["test"] != "clean" or is_baseline(r["init"]):
            continue
        weights = {int(k[len(PREFIX):]): as_number(v) for k, v in r.items()
                   if k.startswith(PREFIX) and k[len(PREFIX):].isdigit()}
        weights = {b: w for b, w in weights.items() if not np.isnan(w)}
        for block, w in weights.items():
            found[(r["init"], r["training_data"], r["copypaste"])][block].append(w)
    return {key: {b: np.asarray(ws) for b, ws in sorted(blocks.items())} for key, blocks in found.items()}


def layer_weight_section(rows: list[dict]) -> list[str]:
    """A table of each learned mix's block weights (mean ± std over its runs, the largest in bold);
    nothing where no model learned a mix."""
    models = mean_layer_weights(rows)
    if not models:
        return []
    blocks = sorted({b for weights in models.values() for b in weights})
    lines = ["## Learned block weights", "",
             "The weight each model's learned mix gives each encoder block (softmax, summing to 1; "
             "a flat mix of n blocks gives each 1/n): mean ± std over the runs' clean-test rows, "
             "the largest in bold.", "",
             "| Init | Training data | CopyPaste | Runs | " + " | ".join(f"block {b}" for b in blocks) + " |",
             "|---|---|---|---|" + "---|" * len(blocks)]
    for (init, data, scheme), weights in models.items():
        stats = {b: summarize(w) for b, w in weights.items()}  # (mean, sample std) over runs
        top = max(stats, key=lambda b: stats[b][0])
        cells = []
        for b in blocks:
            if b not in weights:
                cells.append("-")
                continue
            text = f"{stats[b][0]:.3f} ± {stats[b][1]:.3f}"
            cells.append(f"**{text}**" if b == top else text)
        runs = max(len(w) for w in weights.values())
        lines.append(f"| {init} | {data} | {SCHEME_NAMES.get(scheme, scheme)} | {runs} | " + " | ".join(cells) + " |")
    return lines + [""]


def plot_layer_weights(rows: list[dict], path: Path) -> Path | None:
    """Bars of each learned mix's mean block weights (± std over runs), the flat mix dashed; None
    where no model learned a mix."""
    models = mean_layer_weights(rows)
    if not models:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 + 0.8 * max(len(w) for w in models.values())), 3.2))
    width = 0.8 / len(models)
    for i, ((init, data, scheme), weights) in enumerate(models.items()):
        blocks = list(weights)
        means, stds = zip(*(summarize(weights[b]) for b in blocks))
        ax.bar(np.asarray(blocks) + (i - (len(models) - 1) / 2) * width, means,
               width, yerr=stds, capsize=2,
               label=f"{init}, {data}, {SCHEME_NAMES.get(scheme, scheme)}")
    n_blocks = max(len(w) for w in models.values())
    ax.axhline(1 / n_blocks, color="grey", linestyle="--", linewidth=1, label=f"flat mix (1/{n_blocks})")
    ax.set_xlabel("encoder block")
    ax.set_ylabel("learned weight")
    ax.set_xticks(sorted({b for w in models.values() for b in w}))
    ax.legend(fontsize=7)
    return save_figure(fig, path)
