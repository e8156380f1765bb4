"""Each deep-model cell of a grid's results.csv against each baseline in the same folds:
paired t-test and Wilcoxon over folds of seed-averaged weighted F1, 95 % CI, Holm over the
comparisons printed for one test condition (copypaste_ser.evaluation.stats).

    python scripts/against_baselines.py docs/results/emodb4-rz-loso/results.csv [--test clean]
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict

from copypaste_ser.evaluation.baselines import BASELINES
from copypaste_ser.evaluation.stats import fold_test, holm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--test", default="clean")
    args = ap.parse_args()
    scores: dict[tuple[str, str, str], dict] = defaultdict(dict)
    for path in args.results:
        for r in csv.DictReader(open(path)):
            if r["test"] == args.test:
                scores[(r["init"], r["training_data"], r["copypaste"])][(r["fold"], r["seed"])] = 100 * float(r["weighted_f1"])
    cells = [k for k in sorted(scores) if k[0] not in BASELINES]
    bases = [k for k in sorted(scores) if k[0] in BASELINES]
    tests = [(c, b, fold_test(scores[b], scores[c])) for c in cells for b in bases]
    corrected = holm([t.t_p for _, _, t in tests])
    print(f"| model ({args.test} test) | baseline | change | 95 % CI | p | Wilcoxon p | Holm p | folds better |")
    print("|---|---|---|---|---|---|---|---|")
    for (cell, base, t), p_holm in zip(tests, corrected):
        better = sum(d > 0 for d in t.diffs)
        print(f"| {cell[0]} {cell[1]} {cell[2]} | {base[0]} | {t.mean_diff:+.2f} | [{t.ci_low:+.2f}, {t.ci_high:+.2f}] "
              f"| {t.t_p:.3f} | {t.wilcoxon_p:.3f} | {p_holm:.3f} | {better}/{t.n_folds} |")


if __name__ == "__main__":
    main()
