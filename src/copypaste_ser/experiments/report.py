"""Markdown report laid out like the paper's Tables 2-6, with plots, from a grid's results.csv.

Each cell is mean +- std over seeds and folds; in parentheses the change against No CP and
its Holm-corrected p over the cells of the table. The tests are in stats.py: seeds are
averaged within a fold and the paired difference is tested over folds (t-test, Wilcoxon,
95 % CI); a one-fold grid gets a paired bootstrap over test utterances where per-utterance
predictions exist (grid run folders or predictions.json beside results.csv), else no test,
and each table says in one line which. Noisy-test tables scored before noisy tests took
their VAD from the noisy audio are marked (:func:`old_vad`). Where the folds partition the
corpus, a section pools the test predictions over folds (pooling.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from copypaste_ser.evaluation.pooled import pooled_section
from copypaste_ser.evaluation.predictions_file import write_predictions
from copypaste_ser.evaluation.stats import (
    Comparison,
    compare,
    describe_tests,
    with_holm,
)
from copypaste_ser.experiments.baseline_comparison import against_baselines
from copypaste_ser.experiments.grid_log import machine_label
from copypaste_ser.experiments.grid_log import read_logs as grid_log
from copypaste_ser.experiments.grid_results import (
    baseline_name,
    baseline_names,
    baselines_of,
    clean_confusions,
    is_baseline,
    merge_predictions,
    merge_results,
    refuse_dropped_rows,
    read_sources,
    scored_only,
)
from copypaste_ser.experiments.layer_weights import layer_weight_section, plot_layer_weights
from copypaste_ser.experiments.model_comparison import against_finished_models
from copypaste_ser.experiments.paper import CREMA_D_PER_CLASS, paper_row
from copypaste_ser.experiments.paper import SCHEMES as PAPER_SCHEMES
from copypaste_ser.experiments.report_plots import (
    DATA_NAMES,
    SCHEME_NAMES,
    _index,
    baseline_levels,
    plot_confusions,
    plot_report,
    seed_spread,
)
from copypaste_ser.experiments.reporting_rule import rule_section
from copypaste_ser.files.atomic import atomic_write_csv, atomic_write_text
from copypaste_ser.files.outputs import check_outputs, record_outputs


def _comparisons(rows: list[dict], preds: dict, init: str, test: str) -> dict[str, tuple[Comparison, float]]:
    """Each scheme's change against No CP (same init, data, test) in one table, with its
    Holm-corrected p over the table's tested cells: {"data|scheme": (comparison, holm p)}."""
    idx = _index(rows)

    def run_preds(key: tuple) -> dict:
        return {(f, s): {u: tuple(v) for u, v in preds[k].items()} for (f, s) in idx[key]
                if (k := "|".join((f, key[0], key[1], key[2], s, key[3]))) in preds}
    found = {}
    for data in DATA_NAMES:
        base = (init, data, "none", test)
        for s in SCHEME_NAMES:
            if s != "none" and base in idx and (init, data, s, test) in idx:
                key = (init, data, s, test)
                found[f"{data}|{s}"] = compare(idx[base], idx[key], run_preds(base), run_preds(key))
    return with_holm(found)


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}" if p < 0.01 else f"p={p:.2f}"


#: The one meaning of "±" in every report table (the reporting rule's).
PLUS_MINUS = ("± is the standard deviation over seeds within a fold, averaged over folds (the seed "
              "noise of one cell); the spread over folds is in the per-fold table")


def _cell(values: dict, tested: tuple[Comparison, float] | None) -> str:
    mean, spread = seed_spread(values)
    text = f"{mean:.2f} ± {spread:.2f}"
    if tested is not None:
        c, p = tested
        star = "*" if p < 0.05 else ""
        text += f" ({100 * c.mean_diff:+.2f}{star}, {_p(p)})" if not np.isnan(p) else f" ({100 * c.mean_diff:+.2f})"
    return text


def score_table(rows: list[dict], init: str, test: str, comparisons: dict | None = None,
                paper: str | None = None) -> str:
    idx = _index(rows)
    comparisons = _comparisons(rows, {}, init, test) if comparisons is None else comparisons
    schemes = [s for s in SCHEME_NAMES if any(k[:3] == (init, d, s) for k in idx for d in DATA_NAMES)]
    lines = ["| Emotion data | " + " | ".join(SCHEME_NAMES[s] for s in schemes) + " |",
             "|---|" + "---|" * len(schemes)]
    for data in DATA_NAMES:
        if not any((init, data, s, test) in idx for s in schemes):
            continue
        cells = [_cell(idx[(init, data, s, test)], comparisons.get(f"{data}|{s}"))
                 if (init, data, s, test) in idx else "–" for s in schemes]
        lines.append(f"| {DATA_NAMES[data]} | " + " | ".join(cells) + " |")
        published = paper_row(paper, init, test, data, schemes)
        if published:
            lines.append(published)
    for label, level in baseline_levels(rows, test).items():
        lines.append(f"| {label} baseline (clean training) | {level:.2f} |" + " |" * (len(schemes) - 1))
    uar = {s: _mean_over_folds(rows, init, "clean", s, test, "uar") for s in schemes}
    uar_cells = [f"{SCHEME_NAMES[s]} {v:.2f}" for s in schemes if (v := uar.get(s)) is not None]
    if uar_cells:
        lines += ["", "UAR (%), mean over folds of the seed means, clean training: " + ", ".join(uar_cells) + "."]
    return "\n".join(lines)


def _mean_over_folds(rows: list[dict], init: str, data: str, scheme: str, test: str, key: str) -> float | None:
    values = {(r["fold"], r["seed"]): float(r[key]) for r in rows if (r["init"], r["training_data"],
              r["copypaste"], r["test"]) == (init, data, scheme, test) and r.get(key) not in (None, "")}
    return seed_spread(values)[0] if values else None


def stats_table(tables: list[tuple[str, str, dict]]) -> str:
    """Every tested change of the report: (init, test name, comparisons) per score table."""
    lines = ["| Init | Test | Emotion data | CopyPaste | change | 95 % CI | p | Wilcoxon p | Holm p | n |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for init, test, comparisons in tables:
        for key, (c, hp) in comparisons.items():
            if c.method == "none":
                continue
            data, s = key.split("|")
            lines.append(f"| {init} | {test} | {DATA_NAMES[data]} | {SCHEME_NAMES[s]} | {100 * c.mean_diff:+.2f} | "
                         f"[{100 * c.ci_low:+.2f}, {100 * c.ci_high:+.2f}] | {c.p:.4f} | "
                         + (f"{c.wilcoxon_p:.4f}" if c.wilcoxon_p == c.wilcoxon_p else "–")
                         + f" | {hp:.4f} | {c.n} {'folds' if c.method == 't' else 'utterances'} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def old_vad(rows: list[dict], init: str, test: str) -> bool:
    """Whether a noisy test's ResNet rows were scored before noisy tests took their VAD from
    the noisy audio (no ``test_vad`` column, see evaluate.py)."""
    return test != "clean" and any(r["init"] == init and r["test"] == test and r.get("test_vad") != "noisy"
                                   for r in rows)


OLD_VAD_NOTE = ("**Made with the old clean-audio VAD**: the ResNet scores of this table come from noisy test "
                "features whose VAD was decided on the clean audio, which no deployed system has; noisy tests "
                "now take their VAD from the noisy audio (issue 12), so these numbers are flattering until "
                "re-measured. The eGeMAPS + SVM baseline always had the noisy audio alone.")


def per_class_table(rows: list[dict], init: str, data: str = "clean", paper: str | None = None) -> str:
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
        published = CREMA_D_PER_CLASS.get(c) if paper == "crema-d" and init != "scratch" and data == "clean" else None
        if published:  # the paper's Table 4, in parentheses
            by_scheme = dict(zip(PAPER_SCHEMES, published))
            vals = [f"{v} ({by_scheme[s]:.2f})" for v, s in zip(vals, schemes)]
        lines.append(f"| {c} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def speaker_norm_line(rows: list[dict]) -> str:
    """Which speaker normalisation the trained runs used (results written before the column: none)."""
    used = {}
    for r in rows:
        used.setdefault(r.get("speaker_norm") or "none", set()).add(r["init"])
    if set(used) <= {"none"}:
        return "Speaker normalisation: none (each utterance's features as extracted)."
    listed = "; ".join(f"{norm} ({', '.join(sorted(inits))})" for norm, inits in sorted(used.items()))
    return (f"Speaker normalisation: {listed} (`speaker`: each speaker's features standardised with that "
            f"speaker's own unlabelled audio of the same split; `neutral-enrolment`: with that speaker's "
            f"other neutral utterances).")


def fold_table(rows: list[dict], init: str, data: str = "clean", test: str = "clean",
               finished: tuple[str, ...] = ()) -> str:
    """Per test fold: each scheme's mean over seeds, the baselines and the ``finished`` models
    (``score`` rows); empty for one fold."""
    sel = [r for r in rows if r["test"] == test and ((r["training_data"] == data and (
        r["init"] == init or is_baseline(r["init"]))) or r["init"] in finished)]
    folds = sorted({r["fold"] for r in sel if r["init"] == init})
    if len(folds) < 2:
        return ""
    schemes = [s for s in SCHEME_NAMES if any(r["copypaste"] == s and r["init"] == init for r in sel)]
    bases = [b for b in [*baselines_of(sel), *finished] if any(r["init"] == b for r in sel)]
    lines = ["| Test fold | " + " | ".join([SCHEME_NAMES[s] for s in schemes] + [baseline_name(b) for b in bases]) + " |",
             "|---|" + "---|" * (len(schemes) + len(bases))]
    for fold in folds:
        vals = [[r["weighted_f1"] for r in sel if r["fold"] == fold and r["init"] == init and r["copypaste"] == s]
                for s in schemes]
        vals += [[r["weighted_f1"] for r in sel if r["fold"] == fold and r["init"] == b] for b in bases]
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


REPORT_FILES = ("report.md", "results.csv", "predictions.json", "confusions.json", "confusions.png",
                "grid-log.jsonl", "scores_by_scheme.png", "score_vs_snr.png", "scores_by_fold.png",
                "layer_weights.png")


def write_report(results: Path | list[Path], out_dir: Path, title: str, command: str = "", notes: str = "",
                 force: bool = False, update: bool = False, rule: Path | None = None,
                 paper: str | None = None) -> Path:
    """report.md, plots, and the merged results.csv (+ confusions.json) in ``out_dir``, from
    one grid's results.csv or several (slices run apart, see :func:`merge_results`).

    Existing report files are replaced only with ``force`` (or ``update``: a grid, or `report
    --update`, refreshing its own report) and only where the tool wrote them (outputs.py); a
    results.csv that would lose rows the existing one holds needs ``force``."""
    sources = read_sources([results] if isinstance(results, (str, Path)) else results)
    rows, confusions = merge_results(sources)
    out_dir = Path(out_dir)
    check_outputs([out_dir / name for name in REPORT_FILES], force or update, "--out")
    if not force:
        refuse_dropped_rows(out_dir / "results.csv", rows)
    finished = {r["init"]: r["init"] for r in rows if r.get("training_data") == "-"}  # `score` rows
    not_ruled = (*baselines_of(rows), *finished)  # baselines and finished models are not cells the rule governs
    ruled = rule_section(rows, rule, not_ruled) if rule is not None else []  # a bad rule file fails first
    preds = merge_predictions(sources)
    confusions.update(clean_confusions(preds, confusions))
    # a file taken in part (FILE@INIT) is a reference from another grid: its log is not this one's
    log = grid_log([source.path for source in sources if source.inits is None])
    out_dir.mkdir(parents=True, exist_ok=True)
    inits = list(dict.fromkeys(r["init"] for r in rows if not is_baseline(r["init"])))
    tests = list(dict.fromkeys(r["test"] for r in rows))
    trained = [r for r in rows if r["init"] not in not_ruled and not scored_only(r["init"])]
    parts = _header_lines(title, command, rows, trained, log, notes)
    if log:
        atomic_write_text(out_dir / "grid-log.jsonl", "".join(json.dumps(e) + "\n" for e in log))
    parts += ruled
    tested = []
    for init in [i for i in inits if i not in finished]:  # a finished model's scores: in the per-fold tables
        lines, compared = _init_sections(rows, preds, init, tests, finished, paper)
        parts += lines
        tested += compared
    models = [i for i in inits if i not in finished and not scored_only(i)]
    parts += against_baselines(rows, models, {**baseline_names(rows), **finished},
                               preds=preds)
    parts += against_finished_models(rows, preds, models, sorted(finished))  # per fold, e.g. per held-out corpus
    parts += pooled_section(rows, preds, SCHEME_NAMES)  # every utterance once, beside mean +- std over folds
    parts += layer_weight_section(rows)
    parts += warnings_section(rows)
    parts += _statistics_section(tested)
    plots = plot_report(rows, out_dir, paper)
    plots += [p for p in [plot_layer_weights(rows, out_dir / "layer_weights.png")] if p]
    if confusions:
        plots.append(plot_confusions(confusions, out_dir / "confusions.png"))
        atomic_write_text(out_dir / "confusions.json", json.dumps(confusions))
    parts += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    parts += ["All runs: [results.csv](results.csv)", ""]
    atomic_write_csv(out_dir / "results.csv", rows)
    if preds:
        write_predictions(out_dir / "predictions.json", preds)
    report = out_dir / "report.md"
    atomic_write_text(report, "\n".join(parts))
    record_outputs([out_dir / name for name in REPORT_FILES])
    return report


def _header_lines(title: str, command: str, rows: list[dict], trained: list[dict], log: list[dict] | None,
                  notes: str) -> list[str]:
    """Title, command, what was run and how long it took, how to read the tables."""
    runs = {(r["fold"], r["init"], r["training_data"], r["copypaste"], r["seed"]) for r in trained}
    folds = sorted({r["fold"] for r in rows})
    seeds = sorted({r["seed"] for r in trained})
    secs = sum(float(r.get("train_seconds") or 0) for r in rows if r["test"] == "clean" and not is_baseline(r["init"]))
    parts = [f"# {title}", ""]
    if command:
        parts += ["Made with:", "", "```", command, "```", ""]
    gpus = sorted({e["machine"]["gpu"] for e in log or [] if (e.get("machine") or {}).get("gpu")})
    where = f"one worker process on {' / '.join(gpus)}" if gpus else "one CPU core"
    parts += [(f"{len(runs)} runs: folds {', '.join(folds)}; seeds {', '.join(seeds)}; "
              f"training time {secs / 3600:.2f} h of {where} (sum over runs)."), "",
              "Weighted F1 (%) on the test speakers, the mean over folds of the seed means; " + PLUS_MINUS + "; in parentheses "
              "the change against No CP with its Holm-corrected p, `*` where that p < 0.05. Seeds are "
              "averaged within each fold first: the folds (held-out speakers), not the runs, are the "
              "replicates. Under each table, one line says what was tested.", ""]
    parts += [speaker_norm_line(trained), ""]
    if log:
        wall = sum(e["seconds"] for e in log)
        parts += [(f"Wall time of the grid: {wall / 3600:.2f} h in {len(log)} invocation(s) that completed "
                  f"{sum(e.get('runs_completed', 0) for e in log)} runs with up to "
                  f"{max(e['workers'] for e in log)} worker(s) (grid-log.jsonl)."), ""]
        machines = sorted({machine_label(e) for e in log if e.get("runs_completed")})
        if len(machines) > 1:  # float-level kernels differ between CPUs: say where a cell may come from
            parts += ["Machines of the invocations that completed runs: " + "; ".join(machines) + ".", ""]
    return parts + ([notes, ""] if notes else [])


_TEST_NAMES = {"clean": "clean test data", "10dB": "test data at 10 dB SNR", "0dB": "test data at 0 dB SNR"}


def _init_sections(rows: list[dict], preds: dict, init: str, tests: list[str], finished: dict,
                   paper: str | None) -> tuple[list[str], list[tuple]]:
    """One model's sections (a score table per test condition, per-class F1, per fold, concat
    probe) and its comparisons against No CP, for the statistics table."""
    parts, tested = [], []
    for test in tests:
        name = _TEST_NAMES.get(test, test)
        comparisons = _comparisons(rows, preds, init, test)
        tested.append((init, name, comparisons))
        flag = old_vad(rows, init, test)
        parts += [f"## Init: {init}, {name}{_paper_table(init, test)}"
                  + (", made with the old clean-audio VAD" if flag else ""), ""]
        parts += [OLD_VAD_NOTE, ""] if flag else []
        parts += [score_table(rows, init, test, comparisons, paper), "", describe_tests(comparisons), ""]
    parts += [f"## Per-class F1, init {init}, clean training, clean test (as the paper's Table 4)", "",
              per_class_table(rows, init, paper=paper)]
    parts += ["", "In parentheses: the paper's Table 4.", ""] if paper == "crema-d" and init != "scratch" else [""]
    folds = fold_table(rows, init, finished=tuple(sorted(finished)))
    if folds:
        parts += [f"## Per test fold, init {init}, clean training, clean test", "",
                  "Weighted F1 (%), mean over seeds.", "", folds, ""]
    probe = probe_table(rows, init)
    if probe:
        parts += [f"## Concat probe, init {init}", "",
                  ("How often the model still names the emotion of an emotional test utterance "
                  "joined to a neutral test utterance of another speaker (kept), next to its "
                  "recall of the same utterances alone (%), mean over seeds and folds."), "", probe, ""]
    return parts, tested


def _statistics_section(tested: list[tuple]) -> list[str]:
    table = stats_table(tested)
    if not table:
        return []
    return ["## Statistics of the changes against No CP", "",
            ("Change of weighted F1 (points), its 95 % CI (t-based over folds, or bootstrap percentile "
            "over utterances), the two-sided p (paired t over folds, or bootstrap), the Wilcoxon "
            "signed-rank p over folds, and p Holm-corrected over the cells of its table."), "", table, ""]


def warnings_section(rows: list[dict]) -> list[str]:
    """Runs whose test answers collapsed onto one class or whose dev and test scores diverge."""
    flagged = [r for r in rows if r.get("warnings")]
    if not flagged:
        return []
    lines = ["## Warnings", "", "Runs to look at before trusting their cell (from each run's metrics.json):", ""]
    lines += [f"- {r['fold']} / {r['init']} / {r['training_data']} / {r['copypaste']} / seed {r['seed']}: "
              f"{r['warnings']}" for r in flagged]
    return lines + [""]
