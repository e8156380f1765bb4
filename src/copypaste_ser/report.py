"""Markdown report laid out like the paper's Tables 2-6, with plots, from a grid's results.csv.

Each cell is mean +- std over seeds and folds; in parentheses the change against No CP and
the p-value of a two-sided paired t-test over the same (fold, seed) pairs.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

from .errors import UserError
from .manifest import atomic_write_csv, atomic_write_text

SCHEME_NAMES = {"none": "No CP", "se-cp": "SE-CP", "n-cp": "N-CP", "n+se-cp": "N+SE-CP"}
DATA_NAMES = {"clean": "Clean", "clean+noise": "Clean+Noise"}


def load_rows(results_csv: Path) -> list[dict]:
    try:
        with open(results_csv, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise UserError(f"{results_csv}: cannot read results ({e.strerror})") from None
    missing = {"fold", "init", "training_data", "copypaste", "seed", "test", "weighted_f1"} - set(rows[0] if rows else {})
    if missing:
        raise UserError(f"{results_csv}: not a grid results.csv (no column {sorted(missing)[0]!r})")
    for r in rows:
        for k, v in r.items():
            if k == "weighted_f1" or k.startswith("f1_") or k in ("uar", "accuracy"):
                r[k] = float(v) if v not in ("", None) else float("nan")
    return rows


def merge_results(results: list[Path]) -> tuple[list[dict], dict]:
    """Rows and clean-test confusions of several grids' results; a run (fold, init, data,
    scheme, seed, test) or confusion key found in several files is taken from the last."""
    merged: dict[tuple, dict] = {}
    confusions: dict = {}
    for path in results:
        for r in load_rows(Path(path)):
            merged[(r["fold"], r["init"], r["training_data"], r["copypaste"], r["seed"], r["test"])] = r
        f = Path(path).parent / "confusions.json"
        if f.is_file():
            confusions.update(json.loads(f.read_text()))
    return list(merged.values()), confusions


def grid_log(results: list[Path]) -> list[dict]:
    """The grid invocations (``grid-log.jsonl`` beside each results.csv), each once, in time order."""
    entries: dict[str, dict] = {}
    for path in results:
        f = Path(path).parent / "grid-log.jsonl"
        if f.is_file():
            for line in f.read_text().splitlines():
                if line.strip():
                    entries[line] = json.loads(line)
    return sorted(entries.values(), key=lambda e: e["started"])


def _index(rows: list[dict]) -> dict:
    """(init, data, scheme, test) -> {(fold, seed): weighted F1}."""
    idx: dict = defaultdict(dict)
    for r in rows:
        if r["init"] != "egemaps-svm":
            idx[(r["init"], r["training_data"], r["copypaste"], r["test"])][(r["fold"], r["seed"])] = r["weighted_f1"]
    return idx


def paired_test(a: dict, b: dict) -> tuple[float, float, int]:
    """Mean difference b - a and two-sided paired t-test p over shared keys."""
    keys = sorted(set(a) & set(b))
    if not keys:
        return float("nan"), float("nan"), 0
    x, y = np.array([a[k] for k in keys]), np.array([b[k] for k in keys])
    diff = y - x
    if len(keys) < 2 or np.allclose(diff, diff[0]):
        return float(diff.mean()), float("nan"), len(keys)
    return float(diff.mean()), float(stats.ttest_rel(y, x).pvalue), len(keys)


def _cell(values: dict, base: dict | None) -> str:
    v = np.array(list(values.values())) * 100
    text = f"{v.mean():.2f} ± {v.std(ddof=1) if len(v) > 1 else 0:.2f}"
    if base is not None:
        d, p, _ = paired_test(base, values)
        star = "*" if p == p and p < 0.05 else ""
        shown = "p<0.01" if p < 0.01 else f"p={p:.2f}"
        text += f" ({100 * d:+.2f}{star}, {shown})" if p == p else f" ({100 * d:+.2f})"
    return text


def score_table(rows: list[dict], init: str, test: str) -> str:
    idx = _index(rows)
    schemes = [s for s in SCHEME_NAMES if any(k[:3] == (init, d, s) for k in idx for d in DATA_NAMES)]
    lines = ["| Emotion data | " + " | ".join(SCHEME_NAMES[s] for s in schemes) + " |",
             "|---|" + "---|" * len(schemes)]
    for data in DATA_NAMES:
        if not any((init, data, s, test) in idx for s in schemes):
            continue
        base = idx.get((init, data, "none", test))
        cells = [_cell(idx[(init, data, s, test)], None if s == "none" else base)
                 if (init, data, s, test) in idx else "–" for s in schemes]
        lines.append(f"| {DATA_NAMES[data]} | " + " | ".join(cells) + " |")
    baseline = [r for r in rows if r["init"] == "egemaps-svm" and r["test"] == test]
    if baseline:
        v = np.array([r["weighted_f1"] for r in baseline]) * 100
        lines.append(f"| eGeMAPS + SVM baseline (clean training) | {v.mean():.2f} ± "
                     f"{v.std(ddof=1) if len(v) > 1 else 0:.2f} |" + " |" * (len(schemes) - 1))
    return "\n".join(lines)


def per_class_table(rows: list[dict], init: str, data: str = "clean") -> str:
    sel = [r for r in rows if r["init"] == init and r["training_data"] == data and r["test"] == "clean"]
    classes = [k[3:] for k in sel[0] if k.startswith("f1_")] if sel else []
    schemes = [s for s in SCHEME_NAMES if any(r["copypaste"] == s for r in sel)]
    lines = ["| Emotion class | " + " | ".join(SCHEME_NAMES[s] for s in schemes) + " |",
             "|---|" + "---|" * len(schemes)]
    for c in classes:
        vals = []
        for s in schemes:
            v = np.array([r[f"f1_{c}"] for r in sel if r["copypaste"] == s]) * 100
            vals.append(f"{np.nanmean(v):.2f}")
        lines.append(f"| {c} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def fold_table(rows: list[dict], init: str, data: str = "clean", test: str = "clean") -> str:
    """Per test fold: each scheme's mean over seeds, and the baseline; empty for one fold."""
    sel = [r for r in rows if r["test"] == test and r["training_data"] == data
           and r["init"] in (init, "egemaps-svm")]
    folds = sorted({r["fold"] for r in sel})
    if len(folds) < 2:
        return ""
    schemes = [s for s in SCHEME_NAMES if any(r["copypaste"] == s and r["init"] == init for r in sel)]
    has_base = any(r["init"] == "egemaps-svm" for r in sel)
    lines = ["| Test fold | " + " | ".join(SCHEME_NAMES[s] for s in schemes)
             + (" | eGeMAPS + SVM |" if has_base else " |"),
             "|---|" + "---|" * (len(schemes) + has_base)]
    for fold in folds:
        vals = [[r["weighted_f1"] for r in sel if r["fold"] == fold and r["init"] == init and r["copypaste"] == s]
                for s in schemes]
        if has_base:
            vals.append([r["weighted_f1"] for r in sel if r["fold"] == fold and r["init"] == "egemaps-svm"])
        lines.append(f"| {fold} | " + " | ".join(f"{100 * np.mean(v):.2f}" if v else "–" for v in vals) + " |")
    return "\n".join(lines)


def probe_table(rows: list[dict], init: str) -> str:
    sel = [r for r in rows if r["init"] == init and r["test"] == "clean" and r.get("probe_kept") not in ("", None)]
    if not sel:
        return ""
    lines = ["| Emotion data | CopyPaste | kept | alone |", "|---|---|---|---|"]
    for data in DATA_NAMES:
        for s in SCHEME_NAMES:
            v = [r for r in sel if r["training_data"] == data and r["copypaste"] == s]
            if v:
                kept = 100 * np.mean([float(r["probe_kept"]) for r in v])
                alone = 100 * np.mean([float(r["probe_alone"]) for r in v])
                lines.append(f"| {DATA_NAMES[data]} | {SCHEME_NAMES[s]} | {kept:.1f} | {alone:.1f} |")
    return "\n".join(lines)


def _paper_table(init: str, test: str) -> str:
    """Which of the paper's tables a score table corresponds to (Tables 2/3: clean test from
    scratch / pretrained; Tables 5/6: 10 dB / 0 dB test)."""
    number = {"clean": 2 if init == "scratch" else 3, "10dB": 5, "0dB": 6}.get(test)
    return f" (as the paper's Table {number})" if number else ""


def write_report(results: Path | list[Path], out_dir: Path, title: str, command: str = "", notes: str = "") -> Path:
    """report.md, plots, and the merged results.csv (+ confusions.json) in ``out_dir``, from
    one grid's results.csv or several (slices run apart, see :func:`merge_results`)."""
    sources = [Path(results)] if isinstance(results, (str, Path)) else [Path(r) for r in results]
    rows, confusions = merge_results(sources)
    log = grid_log(sources)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inits = list(dict.fromkeys(r["init"] for r in rows if r["init"] != "egemaps-svm"))
    tests = list(dict.fromkeys(r["test"] for r in rows))
    runs = {(r["fold"], r["init"], r["training_data"], r["copypaste"], r["seed"]) for r in rows
            if r["init"] != "egemaps-svm"}
    folds = sorted({r["fold"] for r in rows})
    seeds = sorted({r["seed"] for r in rows if r["init"] != "egemaps-svm"})
    secs = sum(float(r["train_seconds"] or 0) for r in rows if r["test"] == "clean" and r["init"] != "egemaps-svm")
    parts = [f"# {title}", ""]
    if command:
        parts += ["Made with:", "", "```", command, "```", ""]
    parts += [f"{len(runs)} runs: folds {', '.join(folds)}; seeds {', '.join(seeds)}; "
              f"training time {secs / 3600:.2f} h of one CPU core (sum over runs).", "",
              "Weighted F1 (%) on the test speakers, mean ± std over seeds and folds; in parentheses "
              "the change against No CP, `*` where a paired t-test over the same (fold, seed) pairs "
              "gives p < 0.05.", ""]
    if log:
        wall = sum(e["seconds"] for e in log)
        parts += [f"Wall time of the grid: {wall / 3600:.2f} h in {len(log)} invocation(s) that completed "
                  f"{sum(e.get('runs_completed', 0) for e in log)} runs with up to "
                  f"{max(e['workers'] for e in log)} worker(s) (grid-log.jsonl).", ""]
        atomic_write_text(out_dir / "grid-log.jsonl", "".join(json.dumps(e) + "\n" for e in log))
    if notes:
        parts += [notes, ""]
    names = {"clean": "clean test data", "10dB": "test data at 10 dB SNR", "0dB": "test data at 0 dB SNR"}
    for init in inits:
        for test in tests:
            parts += [f"## Init: {init}, {names.get(test, test)}{_paper_table(init, test)}", "",
                      score_table(rows, init, test), ""]
        parts += [f"## Per-class F1, init {init}, clean training, clean test (as the paper's Table 4)", "",
                  per_class_table(rows, init), ""]
        folds = fold_table(rows, init)
        if folds:
            parts += [f"## Per test fold, init {init}, clean training, clean test", "",
                      "Weighted F1 (%), mean over seeds.", "", folds, ""]
        probe = probe_table(rows, init)
        if probe:
            parts += [f"## Concat probe, init {init}", "",
                      "How often the model still names the emotion of an emotional test utterance "
                      "joined to a neutral test utterance of another speaker (kept), next to its "
                      "recall of the same utterances alone (%), mean over seeds and folds.", "", probe, ""]
    plots = plot_report(rows, out_dir)
    if confusions:
        plots.append(plot_confusions(confusions, out_dir / "confusions.png"))
        atomic_write_text(out_dir / "confusions.json", json.dumps(confusions))
    parts += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    parts += ["All runs: [results.csv](results.csv)", ""]
    atomic_write_csv(out_dir / "results.csv", rows)
    report = out_dir / "report.md"
    atomic_write_text(report, "\n".join(parts))
    return report


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
        base = [r["weighted_f1"] for r in rows if r["init"] == "egemaps-svm" and r["test"] == "clean"]
        if base:
            ax.axhline(100 * np.mean(base), color="gray", linestyle=":", label="eGeMAPS + SVM")
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
    return paths


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
        cm = np.asarray(confusions[key]["confusion"], dtype=float)
        labels = confusions[key]["labels"]
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.axis("on")
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), [lab[:3] for lab in labels], fontsize=7, rotation=90)
        ax.set_yticks(range(len(labels)), [lab[:3] for lab in labels], fontsize=7)
        init, data, scheme = key.split("|")
        ax.set_title(f"{init}, {DATA_NAMES.get(data, data)}\n{SCHEME_NAMES.get(scheme, scheme)}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

