"""Scores (scikit-learn), the confusion-matrix plot (scikit-learn's ConfusionMatrixDisplay) and training curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score


def score(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Weighted F1 (the paper's metric), macro F1, UAR, accuracy, per-class F1, confusion."""
    idx = list(range(len(labels)))
    per_class = f1_score(y_true, y_pred, labels=idx, average=None, zero_division=0)
    present = sorted(set(int(y) for y in y_true))
    return {
        "weighted_f1": float(f1_score(y_true, y_pred, labels=idx, average="weighted", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "uar": float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "per_class_f1": {lab: float(f) for lab, f in zip(labels, per_class)},
        "confusion": confusion_matrix(y_true, y_pred, labels=idx).tolist(),
        "labels": list(labels),
        "n": len(y_true),
    }


#: A model whose test answers put this share on one class has collapsed onto it, unless the
#: test data is itself mostly that class (then COLLAPSE_MARGIN above its true share).
COLLAPSE_SHARE = 0.9
COLLAPSE_MARGIN = 0.3
#: Dev and test weighted F1 further apart than this (points of a fraction) are flagged.
DIVERGENCE = 0.25


def prediction_warnings(metrics: dict, dev_score: float | None = None) -> list[str]:
    """Plain-language warnings about a run's test answers (``score``'s confusion matrix):
    predictions collapsed onto one class, or dev and test scores far apart."""
    confusion = np.asarray(metrics.get("confusion") or [[0]])
    n = int(confusion.sum())
    if n == 0:
        return []
    labels = metrics.get("labels") or [str(i) for i in range(len(confusion))]
    predicted = confusion.sum(axis=0) / n
    true = confusion.sum(axis=1) / n
    top = int(predicted.argmax())
    out = []
    if predicted[top] >= COLLAPSE_SHARE and predicted[top] - true[top] >= COLLAPSE_MARGIN:
        out.append(f"collapsed: {100 * predicted[top]:.0f} % of the {n} test answers are {labels[top]!r} "
                   f"(it is {100 * true[top]:.0f} % of the test data)")
    test = metrics.get("weighted_f1")
    if dev_score is not None and test is not None and abs(dev_score - test) > DIVERGENCE:
        out.append(f"dev and test disagree: dev weighted F1 {100 * dev_score:.1f} %, test {100 * test:.1f} %")
    return out


def count_confusion(pairs: Sequence[tuple[str, str]], labels: Sequence[str]) -> list[list[int]]:
    """Counts (true row, predicted column) of (true, predicted) label pairs, in ``labels``' order."""
    if not pairs:  # scikit-learn refuses empty input
        return [[0] * len(labels) for _ in labels]
    true, pred = zip(*pairs)
    return confusion_matrix(list(true), list(pred), labels=list(labels)).tolist()


def draw_confusion(ax, counts: np.ndarray, labels: Sequence[str], annotate: bool = True) -> None:
    """A row-normalised confusion matrix on ``ax`` (scikit-learn's ConfusionMatrixDisplay):
    colour = share of the true class; with ``annotate`` each cell shows count and share."""
    from sklearn.metrics import ConfusionMatrixDisplay

    cm = np.asarray(counts, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)  # a class absent from test: 0
    display = ConfusionMatrixDisplay(norm, display_labels=list(labels))
    display.plot(ax=ax, cmap="Blues", colorbar=False, include_values=annotate,
                 im_kw={"vmin": 0, "vmax": 1}, text_kw={"fontsize": 8})
    if annotate:  # sklearn writes one number per cell: write count and share, white on dark cells
        for (i, j), text in np.ndenumerate(display.text_):
            text.set_text(f"{int(cm[i, j])}\n{norm[i, j]:.0%}")
            text.set_color("white" if norm[i, j] > 0.5 else "black")


def plot_confusion(metrics: dict, path: Path, title: str = "") -> None:
    """``metrics``' confusion matrix (from :func:`score`) as a PNG at ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = metrics["labels"]
    fig, ax = plt.subplots(figsize=(1.1 * len(labels) + 2.5, 1.0 * len(labels) + 2))
    draw_confusion(ax, metrics["confusion"], labels)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"weighted F1 {metrics['weighted_f1']:.3f}")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    ep = [h["epoch"] for h in history]
    dev_key = next(k for k in history[0] if k.startswith("dev_"))  # the selection metric
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(ep, [h["train_loss"] for h in history])
    ax[0].set(xlabel="epoch", ylabel="train loss")
    ax[1].plot(ep, [h[dev_key] for h in history])
    ax[1].set(xlabel="epoch", ylabel=dev_key.replace("_", " "))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
