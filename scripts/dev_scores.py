"""Dev-speaker scores of grid folders, for choosing options without looking at test speakers.

For each cell (init / training data / CopyPaste) of each grid folder: the mean over folds and
seeds of the dev weighted F1 of the kept model (``metrics.json``), and the mean dev curve over
epochs (``history.jsonl``), which shows where training stops helping.

    python scripts/dev_scores.py runs/dev-emodb4-scratch-d1 runs/dev-emodb4-scratch-d2 [--curves]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def cell_scores(grid: Path) -> dict[str, dict]:
    """{cell: {"dev": [kept model's dev F1 per run], "curves": [per-epoch dev F1 per run]}}."""
    cells: dict[str, dict] = defaultdict(lambda: {"dev": [], "curves": [], "folds": set()})
    for metrics in sorted(grid.glob("*/*/*/*/seed-*/metrics.json")):
        run = metrics.parent
        fold, init, training, scheme = run.parts[-5:-1]
        cell = cells[f"{init} {training} {scheme}"]
        cell["dev"].append(json.loads(metrics.read_text())["dev_weighted_f1"])
        cell["folds"].add(fold)
        history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines() if line]
        cell["curves"].append([h["dev_weighted_f1"] for h in history])
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grids", nargs="+", type=Path, help="grid output folders")
    parser.add_argument("--curves", action="store_true", help="also print the mean dev curve per epoch")
    args = parser.parse_args(argv)
    for grid in args.grids:
        if not grid.is_dir():
            print(f"{grid}: no such grid folder; give a grid's out: folder", file=sys.stderr)
            return 2
        for name, cell in sorted(cell_scores(grid).items()):
            dev = 100 * np.asarray(cell["dev"])
            print(f"{grid.name:36s} {name:40s} dev wF1 {dev.mean():6.2f}  ({len(dev)} runs, "
                  f"{len(cell['folds'])} folds)")
            if args.curves:
                length = min(len(c) for c in cell["curves"])
                curve = 100 * np.mean([c[:length] for c in cell["curves"]], axis=0)
                print("   per epoch: " + " ".join(f"{v:.0f}" for v in curve))
    return 0


if __name__ == "__main__":
    sys.exit(main())
