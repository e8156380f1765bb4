"""The report's "against a finished model" section: each trained model cell against a model
scored with ``copypaste-ser score`` (the shipped default, say) fold by fold, where the question
is per fold (per held-out corpus, in leave-one-corpus-out) rather than on average.

Per fold both hold, the paired bootstrap over that fold's test utterances (seeds averaged in each
resample; evaluation.stats.compare), then Holm over the folds of one model pair."""

from __future__ import annotations

import math

from copypaste_ser.evaluation.pooled import run_key
from copypaste_ser.evaluation.stats import compare, with_holm


def _runs(rows: list[dict], init: str, data: str | None, scheme: str, test: str, fold: str):
    chosen = [r for r in rows if r["init"] == init and r["copypaste"] == scheme and r["test"] == test
              and r["fold"] == fold and (data is None or r["training_data"] == data)]
    return {(fold, str(r["seed"])): float(r["weighted_f1"]) for r in chosen}, chosen  # 0-1, as stats.compare


def _fmt(p: float) -> str:
    return "-" if math.isnan(p) else f"{p:.3g}"


def against_finished_models(rows: list[dict], preds: dict[str, dict], models: list[str],
                            finished: list[str], test: str = "clean", n_boot: int = 2000) -> list[str]:
    """Markdown lines, one table per (model cell, finished model) sharing a fold; empty when none."""
    lines: list[str] = []
    cells = sorted({(r["init"], r["training_data"], r["copypaste"]) for r in rows
                    if r["init"] in models and r["test"] == test})
    for init, data, scheme in cells:
        for other in finished:
            folds = sorted({r["fold"] for r in rows if r["init"] == other and r["test"] == test}
                           & {r["fold"] for r in rows if r["init"] == init and r["test"] == test})
            found = {}
            for fold in folds:
                ref, ref_rows = _runs(rows, other, None, "none", test, fold)
                sys, sys_rows = _runs(rows, init, data, scheme, test, fold)
                found[fold] = compare(ref, sys, _preds(ref_rows, preds), _preds(sys_rows, preds), n_boot=n_boot)
            if not found:
                continue
            lines += [f"## Against {other}, per fold: {init}, {data}, {scheme}, {test} test", "",
                      f"Weighted F1 points, {init} minus {other}, on each fold's test utterances: the paired "
                      "bootstrap over them (seeds averaged in each resample), p Holm-corrected over the "
                      f"{len(found)} folds.", "",
                      "| fold | model - other | 95 % CI | p (bootstrap) | p (Holm) | utterances |",
                      "|---|---|---|---|---|---|"]
            for fold, (c, p_holm) in with_holm(found).items():
                size = str(c.n) if c.method == "bootstrap" else "- (no predictions)"
                lines.append(f"| {fold} | {100 * c.mean_diff:+.2f} | {100 * c.ci_low:+.2f} to {100 * c.ci_high:+.2f} | {_fmt(c.p)} "
                             f"| {_fmt(p_holm)} | {size} |")
            lines.append("")
    return lines


def _preds(rows: list[dict], preds: dict[str, dict]) -> dict[tuple, dict]:
    return {(r["fold"], str(r["seed"])): {u: tuple(v) for u, v in preds[run_key(r)].items()}
            for r in rows if run_key(r) in preds}


__all__ = ["against_finished_models"]
