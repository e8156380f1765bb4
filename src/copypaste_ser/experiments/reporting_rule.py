"""The reporting rule (docs/protocol/reporting-rule.yaml) applied to a results table.

The rule is committed before the runs it governs; ``report --rule FILE`` states it in the
report, names the commit that added it, and lists every cell that falls short of it (fewer
seeds than the rule asks, a scheme the rule says to show but the table lacks), so a reader
sees at once which numbers count as results.
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

from copypaste_ser.errors import UserError
from copypaste_ser.files.textio import load_yaml

REQUIRED = ("form", "statistics", "selection")


def load_rule(path: str | Path) -> dict:
    """The rule file as a mapping; a one-line error for anything else."""
    path = Path(path)
    rule = load_yaml(path, "--rule")  # UTF-8, valid YAML, no key given twice
    if not isinstance(rule, dict) or any(k not in rule for k in REQUIRED):
        raise UserError(f"--rule: {path}: not a reporting rule (it needs the keys {', '.join(REQUIRED)})")
    for key in REQUIRED:
        if not isinstance(rule[key], dict):
            raise UserError(f"--rule: {path}:{key}: must be a mapping (see docs/protocol/reporting-rule.yaml), "
                            f"not {rule[key]!r}")
    for key in ("seeds", "schemes_shown"):
        if not isinstance(rule["form"].get(key, []), list):
            raise UserError(f"--rule: {path}:form.{key}: must be a list, not {rule['form'][key]!r}")
    return rule


def shortfalls(rows: list[dict], rule: dict, baselines: tuple[str, ...] = ()) -> list[str]:
    """Cells of ``rows`` (clean test) that the rule does not admit as results, one line each."""
    form = rule.get("form") or {}
    seeds = {str(s) for s in form.get("seeds", [])}
    shown = list(form.get("schemes_shown", []))
    cells: dict[tuple, set[str]] = defaultdict(set)
    schemes: dict[tuple, set[str]] = defaultdict(set)
    for r in rows:
        if r.get("test") != "clean" or r.get("init") in baselines:
            continue
        cells[(r["init"], r["training_data"], r["copypaste"], r["fold"])].add(str(r["seed"]))
        schemes[(r["init"], r["training_data"])].add(r["copypaste"])
    out = []
    for (init, data, scheme, fold), have in sorted(cells.items()):
        if seeds and have != seeds:
            out.append(f"{init} / {data} / {scheme} / {fold}: seeds {', '.join(sorted(have))}, the rule asks "
                       f"{', '.join(sorted(seeds))}")
    for (init, data), have in sorted(schemes.items()):
        lacking = [s for s in shown if s not in have]
        if lacking:
            out.append(f"{init} / {data}: schemes {', '.join(lacking)} not run (the rule shows every scheme)")
    return out


def rule_commit(path: str | Path) -> str:
    """'<hash> <date>' of the commit that added ``path``, or '' outside a git checkout."""
    path = Path(path).resolve()
    try:
        done = subprocess.run(["git", "log", "--diff-filter=A", "--format=%h %cs", "--", path.name],
                              cwd=path.parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = done.stdout.strip().splitlines()
    return lines[-1] if done.returncode == 0 and lines else ""


def rule_section(rows: list[dict], path: str | Path, baselines: tuple[str, ...] = ()) -> list[str]:
    """The report's "Reporting rule" section."""
    rule = load_rule(path)
    form = rule.get("form") or {}
    commit = rule_commit(path)
    lines = ["## Reporting rule", "",
             f"Reported under `{Path(path).name}`" + (f" (added in commit {commit})" if commit else "")
             + f": {form.get('unit', 'single model')}s, mean of seeds {', '.join(map(str, form.get('seeds', [])))}, "
             f"headline scheme {form.get('headline_scheme', '-')}, every scheme shown; "
             f"statistics: {(rule.get('statistics') or {}).get('several_folds', '')}.", ""]
    problems = shortfalls(rows, rule, baselines)
    if problems:
        lines += ["Cells that are not results under the rule (shown, but not to be quoted):", ""]
        lines += [f"- {p}" for p in problems]
    else:
        lines += ["Every cell of this report meets the rule."]
    return lines + [""]


__all__ = ["load_rule", "shortfalls", "rule_commit", "rule_section"]
