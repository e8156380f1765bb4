"""Pick the dev config with the best mean dev weighted F1 and write the test grid config from it.

The choice reads dev speakers only (each run's kept model scored on its fold's dev speaker,
``metrics.json``), so the test grid can follow in the same job without a person looking at test
scores in between. The test config keeps the chosen config's preset and training options and
runs No CP and N-CP with the seeds given.

    python scripts/choose_on_dev.py configs/dev/emodb4-scratch-d1*.yaml \
        --out configs/emodb4-small-dev3-loso.yaml --grid-out ../runs/grid-emodb4-small-dev3-loso
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev_scores import cell_scores  # noqa: E402


def dev_score(config: Path) -> tuple[float, int]:
    """(mean dev weighted F1 over the config's runs, number of runs)."""
    grid = (config.parent / yaml.safe_load(config.read_text())["out"]).resolve()
    scores = [s for cell in cell_scores(grid).values() for s in cell["dev"]]  # none where no grid folder
    return (100 * float(np.mean(scores)) if scores else float("nan")), len(scores)


def test_config(chosen: Path, out: Path, grid_out: str, seeds: list[int], baseline: bool) -> str:
    """The test grid config (YAML text): the chosen config's options, No CP and N-CP."""
    cfg = yaml.safe_load(chosen.read_text())
    data = (chosen.parent / cfg["data"]).resolve()

    def from_out(path: Path) -> str:  # the test config's paths are relative to its own folder
        return os.path.relpath(path, out.resolve().parent)

    cfg.update(data=from_out(data), out=grid_out, noise_root=from_out(data.parent / "musan"),
               copypaste=["none", "n-cp"], seeds=seeds, baseline=baseline)
    header = (f"# The test grid of {chosen.name}: its folds and options,\n"
              f"# chosen by scripts/choose_on_dev.py as the best mean dev weighted F1 of its round.\n"
              f"# No CP vs N-CP, seeds {', '.join(map(str, seeds))}.\n")
    return header + yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", type=Path, help="dev grid configs of one round")
    parser.add_argument("--out", type=Path, required=True, help="test grid config to write")
    parser.add_argument("--grid-out", required=True, help="the test grid's out: (relative to --out's folder)")
    parser.add_argument("--seed", type=int, action="append", help="test seeds (default 0 1 2)")
    parser.add_argument("--baseline", action="store_true", help="the test grid also scores the baselines")
    args = parser.parse_args(argv)
    scored = [(config, *dev_score(config)) for config in args.configs]
    for config, score, runs in scored:
        print(f"{config.name:32s} dev wF1 {score:6.2f}  ({runs} runs)")
    finished = [s for s in scored if s[2] > 0 and np.isfinite(s[1])]
    if not finished:
        print("no dev config has finished runs; run their grids first", file=sys.stderr)
        return 2
    chosen = max(finished, key=lambda s: s[1])[0]
    print(f"chosen: {chosen.name}")
    args.out.write_text(test_config(chosen, args.out, args.grid_out, args.seed or [0, 1, 2], args.baseline))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
