"""The report's "against the baselines" section: each trained model against each baseline of the
same folds, over the folds both hold (seeds averaged within a fold first), paired t and Wilcoxon
over folds, Holm over the baselines of one model. The question it answers: does the model beat,
for example, a linear probe on the very encoder it is built on, fold by fold?"""

from __future__ import annotations

import math

from copypaste_ser.evaluation.stats import fold_test, holm


def _scores(rows: list[dict], init: str, scheme: str) -> dict:
    return {(r["fold"], r["seed"]): 100 * float(r["weighted_f1"]) for r in rows
            if r["init"] == init and r["copypaste"] == scheme and r["test"] == "clean"
            and r.get("training_data", "clean") in ("clean", "-")}


def _p(p: float) -> str:
    return "-" if math.isnan(p) else f"{p:.3g}"


def against_baselines(rows: list[dict], models: list[str], baselines: dict[str, str]) -> list[str]:
    """Markdown lines: per model (its No CP cells, clean test), the fold-level difference to
    every baseline present; empty when there is nothing to compare."""
    lines: list[str] = []
    for init in models:
        model = _scores(rows, init, "none")
        tests = {b: fold_test(_scores(rows, b, "none"), model) for b in baselines}
        tests = {b: t for b, t in tests.items() if t.n_folds >= 2}
        if not model or not tests:
            continue
        adjusted = dict(zip(tests, holm([t.t_p for t in tests.values()])))
        lines += [f"## Against the baselines: {init}, No CP, clean test", "",
                  "Model minus baseline, weighted F1 points over the folds both hold (seeds averaged "
                  "within a fold first): mean, 95 % CI (t over folds), paired t p, Wilcoxon p, "
                  "t p Holm-corrected over the baselines of this model.", "",
                  "| baseline | folds | model - baseline | 95 % CI | p (t) | p (Wilcoxon) | p (Holm) |",
                  "|---|---|---|---|---|---|---|"]
        for b, t in tests.items():
            lines.append(f"| {baselines[b]} | {t.n_folds} | {t.mean_diff:+.2f} | {t.ci_low:+.2f} to "
                         f"{t.ci_high:+.2f} | {_p(t.t_p)} | {_p(t.wilcoxon_p)} | {_p(adjusted[b])} |")
        lines.append("")
    return lines


__all__ = ["against_baselines"]
