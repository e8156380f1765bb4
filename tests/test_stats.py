"""Fold-level statistics (stats.py) against values worked out by hand or by scipy directly."""

import math

import numpy as np
import pytest
from scipy import stats as st

from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.stats import fold_means, fold_test, holm, mean_ci, paired_bootstrap, weighted_f1


def test_fold_means_average_the_seeds_of_each_fold():
    scores = {("a", 0): 0.4, ("a", 1): 0.6, ("b", 0): 0.3, ("b", 1): 0.5, ("b", 2): 0.7}
    assert fold_means(scores) == pytest.approx({"a": 0.5, "b": 0.5})


def test_holm_textbook_example():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1, one test is unchanged, NaN (untested cell) is skipped and not counted
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([0.2]) == pytest.approx([0.2])
    out = holm([0.01, float("nan"), 0.02])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert holm([]) == []


def _runs(fold_values, offsets):
    """(fold, seed) -> value: each fold's value plus a per-seed offset."""
    return {(f, s): v + o for f, v in fold_values.items() for s, o in enumerate(offsets)}


def test_fold_test_averages_seeds_then_tests_over_folds():
    ref_folds = {"f1": 0.50, "f2": 0.60, "f3": 0.40, "f4": 0.55}
    gain = {"f1": 0.02, "f2": 0.05, "f3": 0.01, "f4": 0.04}
    ref = _runs(ref_folds, [-0.03, 0.03])
    sys = _runs({f: v + gain[f] for f, v in ref_folds.items()}, [0.01, -0.01])
    r = fold_test(ref, sys)
    d = np.array([0.02, 0.05, 0.01, 0.04])
    assert r.n_folds == 4 and r.diffs == pytest.approx(tuple(d))
    assert r.mean_diff == pytest.approx(0.03)
    # t by hand: mean / (sd / sqrt n), 3 degrees of freedom
    t = 0.03 / (d.std(ddof=1) / 2)
    assert r.t_p == pytest.approx(2 * st.t.sf(t, 3))
    assert r.t_p == pytest.approx(st.ttest_rel([0.52, 0.65, 0.41, 0.59], [0.5, 0.6, 0.4, 0.55]).pvalue)
    # Wilcoxon, n = 4, all differences positive: exact two-sided p = 2 / 2**4
    assert r.wilcoxon_p == pytest.approx(0.125)
    half = st.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert (r.ci_low, r.ci_high) == pytest.approx((0.03 - half, 0.03 + half))


def test_fold_test_does_not_count_seeds_as_replicates():
    """The old per-run test saw 4 folds x 3 seeds = 12 pairs; over folds there are 4."""
    ref = _runs({"f1": 0.5, "f2": 0.6, "f3": 0.4, "f4": 0.55}, [0.0, 0.0, 0.0])
    sys = _runs({"f1": 0.53, "f2": 0.59, "f3": 0.43, "f4": 0.57}, [-0.002, 0.0, 0.002])
    keys = sorted(ref)
    per_run_p = st.ttest_rel([sys[k] for k in keys], [ref[k] for k in keys]).pvalue
    r = fold_test(ref, sys)
    assert r.n_folds == 4 and r.t_p > per_run_p
    assert r.t_p == pytest.approx(st.ttest_1samp([0.03, -0.01, 0.03, 0.02], 0).pvalue)


def test_fold_test_degenerate_cases():
    one = fold_test({("f", 0): 0.4, ("f", 1): 0.6}, {("f", 0): 0.7})
    assert one.n_folds == 1 and one.mean_diff == pytest.approx(0.2)
    assert math.isnan(one.t_p) and math.isnan(one.wilcoxon_p) and math.isnan(one.ci_low)
    none = fold_test({("f", 0): 0.4}, {("g", 0): 0.5})
    assert none.n_folds == 0 and math.isnan(none.mean_diff)
    same = fold_test(_runs({"a": 0.1, "b": 0.2}, [0]), _runs({"a": 0.1, "b": 0.2}, [0]))
    assert same.mean_diff == 0 and math.isnan(same.t_p) and math.isnan(same.wilcoxon_p)


def test_mean_ci_matches_scipy_interval():
    d = [0.1, -0.05, 0.2, 0.07, 0.03]
    want = st.t.interval(0.95, len(d) - 1, loc=np.mean(d), scale=st.sem(d))
    assert mean_ci(d) == pytest.approx(want)


def test_bootstrap_identical_systems_give_no_difference():
    y = [0, 1, 2, 0, 1, 2, 0, 1]
    pred = [[0, 1, 1, 0, 2, 2, 0, 0]]
    r = paired_bootstrap(y, pred, pred, n_boot=200)
    assert r.mean_diff == 0 and r.ci_low == 0 and r.ci_high == 0 and r.p == 1.0


def test_bootstrap_of_accuracy_matches_the_normal_approximation():
    """With accuracy and one seed, the difference is the mean of per-utterance correctness
    differences, whose standard error is sd / sqrt(n): the bootstrap CI must match it."""
    rng = np.random.default_rng(1)
    n = 400
    y = rng.integers(0, 4, n)
    a = np.where(rng.random(n) < 0.5, y, (y + 1) % 4)
    b = np.where(rng.random(n) < 0.6, y, (y + 2) % 4)
    acc = lambda t, p: float(np.mean(t == p))  # noqa: E731
    r = paired_bootstrap(y, [a], [b], metric=acc, n_boot=3000, seed=0)
    c = (b == y).astype(float) - (a == y).astype(float)
    assert r.mean_diff == pytest.approx(c.mean())
    se = c.std(ddof=1) / math.sqrt(n)
    assert (r.ci_high - r.ci_low) == pytest.approx(2 * 1.96 * se, rel=0.1)
    z = c.mean() / se
    assert r.p == pytest.approx(2 * st.norm.sf(abs(z)), abs=0.02)


def test_bootstrap_averages_seeds_and_finds_a_clear_gain():
    y = np.repeat([0, 1, 2, 3], 25)
    wrong = (y + 1) % 4
    r = paired_bootstrap(y, [wrong, wrong], [y, y.copy()], n_boot=500)
    assert r.mean_diff == pytest.approx(1.0) and r.ci_low == pytest.approx(1.0)
    assert r.p == pytest.approx(2 / 501) and r.n_utterances == 100
    with pytest.raises(ValueError, match="aligned"):
        paired_bootstrap(y, [wrong], [y[:-1]])


def test_the_report_compares_a_model_with_each_baseline_over_the_folds_both_hold():
    from copypaste_ser.experiments.baseline_comparison import against_baselines

    rows = []
    for k, fold in enumerate(["f1", "f2", "f3", "f4", "f5"]):
        for seed in ("0", "1"):
            rows.append({"fold": fold, "init": "m", "copypaste": "none", "test": "clean", "training_data": "clean",
                         "seed": seed, "weighted_f1": 0.80 + 0.01 * k + (0.002 if seed == "1" else 0)})
        rows.append({"fold": fold, "init": "probe", "copypaste": "none", "test": "clean", "training_data": "clean",
                     "seed": "-", "weighted_f1": 0.75 + 0.01 * k + 0.004 * (k % 2)})
    rows.append({"fold": "f1", "init": "lonely", "copypaste": "none", "test": "clean", "training_data": "clean",
                 "seed": "-", "weighted_f1": 0.1})
    text = "\n".join(against_baselines(rows, ["m"], {"probe": "the probe", "lonely": "one fold only"}))
    line = next(x for x in text.splitlines() if "| the probe |" in x)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:3] == ["m", "clean", "none"]
    assert cells[4] == "5" and cells[5] == "+4.94"  # fold differences 5.1, 4.7, 5.1, 4.7, 5.1 points
    assert float(cells[7]) < 0.001 and cells[10] == "5/5"
    assert "one fold only" not in text  # a single shared fold is not a test


def test_against_baselines_covers_every_cell_and_holm_counts_every_comparison(tmp_path):
    import csv

    from copypaste_ser.cli.main import app
    from copypaste_ser.experiments.baseline_comparison import comparison_rows
    from typer.testing import CliRunner

    rows = []
    for k, fold in enumerate(["f1", "f2", "f3", "f4"]):
        for scheme, gain in (("none", 0.02), ("n-cp", -0.01)):
            rows.append({"fold": fold, "init": "m", "copypaste": scheme, "test": "clean", "training_data": "clean",
                         "seed": "0", "weighted_f1": 0.70 + gain + 0.003 * k})
        rows.append({"fold": fold, "init": "mfcc-lr", "copypaste": "none", "test": "clean", "training_data": "clean",
                     "seed": "-", "weighted_f1": 0.70 + 0.001 * (k % 2)})
    compared = comparison_rows(rows, ["m"], ["mfcc-lr"])
    assert [(c["copypaste"], round(c["test"].mean_diff, 2)) for c in compared] == [("none", 2.4), ("n-cp", -0.6)]
    raw = sorted(c["test"].t_p for c in compared)
    assert sorted(c["holm_p"] for c in compared) == pytest.approx([min(1.0, 2 * raw[0]), max(min(1.0, 2 * raw[0]), raw[1])])
    results = tmp_path / "results.csv"
    with open(results, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    done = CliRunner().invoke(app, ["against-baselines", str(results), "--out", str(tmp_path / "t.md")])
    assert done.exit_code == 0 and (tmp_path / "t.md").read_text().count("| m | clean |") == 2
    again = CliRunner().invoke(app, ["against-baselines", str(results), "--out", str(tmp_path / "t.md")])
    assert "pass --force" in str(again.exception)  # main() prints a UserError as one line, exit 2
    noisy = CliRunner().invoke(app, ["against-baselines", str(results), "--test", "10dB"])
    assert "choose one of clean" in str(noisy.exception)
    # against a reference model instead of the baselines
    with open(results, "a", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writerows({**r, "init": "m+speaker-norm", "weighted_f1": r["weighted_f1"] + 0.05}
                    for r in rows if r["init"] == "m" and r["copypaste"] == "none")
    ref = CliRunner().invoke(app, ["against-baselines", str(results), "--reference", "m"])
    line = next(x for x in ref.output.splitlines() if x.startswith("| m+speaker-norm"))
    assert "| none | m | 4 | +5.00 |" in line and "mfcc-lr" not in ref.output.split("|---")[-1]
    wrong = CliRunner().invoke(app, ["against-baselines", str(results), "--reference", "nobody"])
    assert "--reference 'nobody': no such init" in str(wrong.exception)
    # two grids of one init told apart by LABEL=FILE; the baselines in them keep their names
    for name, shift in (("before.csv", -0.02), ("after.csv", 0.0)):
        with open(tmp_path / name, "w", newline="") as f:
            w = csv.DictWriter(f, list(rows[0]))
            w.writeheader()
            w.writerows({**r, "weighted_f1": r["weighted_f1"] + shift} if r["init"] == "m" else r for r in rows)
    pair = CliRunner().invoke(app, ["against-baselines", f"before={tmp_path / 'before.csv'}",
                                    f"after={tmp_path / 'after.csv'}", "--reference", "before"])
    line = next(x for x in pair.output.splitlines() if x.startswith("| after | clean | none |"))
    assert "| before | 4 | +2.00 |" in line and "| m " not in pair.output and "| mfcc-lr |" not in pair.output
    several = CliRunner().invoke(app, ["against-baselines", f"x={results}", "--reference", "x:m"])
    assert "| x:m+speaker-norm | clean | none | x:m | 4 | +5.00 |" in several.output


def test_a_model_is_compared_with_a_finished_model_fold_by_fold_on_the_same_utterances():
    from copypaste_ser.evaluation.pooled import run_key
    from copypaste_ser.experiments.model_comparison import against_finished_models

    labels = ["neutral", "angry"]
    rows, preds = [], {}
    for fold, n in (("loco-a", 60), ("loco-b", 40)):
        truth = {f"{fold}-{k}": labels[k % 2] for k in range(n)}
        # the old model says neutral to everything; the new one is right on loco-a, the old one's twin on loco-b
        old = {u: (t, "neutral") for u, t in truth.items()}
        runs = [("old", "-", "-", old)]
        for seed in ("0", "1"):
            new = {u: (t, t if fold == "loco-a" else "neutral") for u, t in truth.items()}
            runs.append(("new", "clean", seed, new))
        for init, data, seed, p in runs:
            row = {"fold": fold, "init": init, "training_data": data, "copypaste": "none", "seed": seed,
                   "test": "clean", "weighted_f1": 1.0 if p is not old and fold == "loco-a" else 1 / 3}
            rows.append(row)
            preds[run_key(row)] = {u: list(v) for u, v in p.items()}
    text = "\n".join(against_finished_models(rows, preds, ["new"], ["old"], n_boot=200))
    a = next(x for x in text.splitlines() if x.startswith("| loco-a"))
    b = next(x for x in text.splitlines() if x.startswith("| loco-b"))
    cells_a, cells_b = a.strip("|").split("|"), b.strip("|").split("|")
    assert float(cells_a[1]) == pytest.approx(100 - 100 / 3, abs=0.01) and cells_a[5].strip() == "60"
    assert float(cells_a[3]) < 0.05 and float(cells_b[1]) == 0.0 and cells_b[5].strip() == "40"
    assert "over the 2 folds" in text


def test_an_approximation_is_set_against_its_exact_cell_on_dev_scores(tmp_path):
    import csv

    from copypaste_ser.cli.main import app
    from typer.testing import CliRunner

    rows = []
    for k, fold in enumerate(["f1", "f2", "f3"]):
        for seed in ("0", "1"):
            for init, dev, test in (("w", 0.80, 0.70), ("w+approx-joins", 0.79, 0.75)):
                rows.append({"fold": fold, "init": init, "copypaste": "n-cp", "test": "clean", "training_data": "clean",
                             "seed": seed, "weighted_f1": test + 0.01 * k, "dev_weighted_f1": dev + 0.02 * k
                             + (0.004 if seed == "1" and init == "w" else 0)})
            rows.append({"fold": fold, "init": "w", "copypaste": "none", "test": "clean", "training_data": "clean",
                         "seed": seed, "weighted_f1": 0.5, "dev_weighted_f1": 0.5})
    results = tmp_path / "results.csv"
    with open(results, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    args = ["against-baselines", str(results), "--reference", "w", "--reference-scheme", "n-cp"]
    dev = CliRunner().invoke(app, [*args, "--score", "dev"])
    assert dev.exit_code == 0, dev.output
    line = next(x for x in dev.output.splitlines() if x.startswith("| w+approx-joins | clean | n-cp |"))
    assert [c.strip() for c in line.strip("|").split("|")][4:6] == ["3", "-1.20"]  # 79 - (80 + 0.2) per fold
    assert "dev speakers" in dev.output
    test = CliRunner().invoke(app, args)
    line = next(x for x in test.output.splitlines() if x.startswith("| w+approx-joins | clean | n-cp |"))
    assert [c.strip() for c in line.strip("|").split("|")][4:6] == ["3", "+5.00"]
    refused = CliRunner().invoke(app, ["against-baselines", str(results), "--reference-scheme", "n-cp"])
    assert isinstance(refused.exception, UserError) and "--reference-scheme: applies with --reference" in str(
        refused.exception)


def test_on_one_split_a_model_is_tested_against_a_baseline_by_the_bootstrap(tmp_path):
    import csv
    import json

    from copypaste_ser.cli.main import app
    from typer.testing import CliRunner

    labels = ["neutral", "angry", "happy", "sad"]
    truth = {f"u{k}": labels[k % 4] for k in range(80)}
    # the model is right everywhere; the probe wrong on every fourth utterance
    runs = {("m", "clean", "none", "0"): {u: (t, t) for u, t in truth.items()},
            ("m", "clean", "none", "1"): {u: (t, t) for u, t in truth.items()},
            ("resemblyzer-lr", "-", "none", "-"): {u: (t, "sad" if int(u[1:]) % 4 == 0 else t) for u, t in truth.items()}}
    rows, preds = [], {}
    for (init, data, scheme, seed), p in runs.items():
        rows.append({"fold": "default", "init": init, "training_data": data, "copypaste": scheme, "seed": seed,
                     "test": "clean", "weighted_f1": weighted_f1([t for t, _ in p.values()], [q for _, q in p.values()])})
        preds["|".join(["default", init, data, scheme, seed, "clean"])] = {u: list(v) for u, v in p.items()}
    results = tmp_path / "results.csv"
    with open(results, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    done = CliRunner().invoke(app, ["against-baselines", str(results)])
    assert isinstance(done.exception, UserError)  # one shared fold, no predictions: nothing to test
    assert "share two folds (or one, with per-utterance predictions)" in str(done.exception)
    (tmp_path / "predictions.json").write_text(json.dumps(preds))
    done = CliRunner().invoke(app, ["against-baselines", str(results)])
    line = next(x for x in done.output.splitlines() if x.startswith("| m | clean | none |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    gain = 100 * (1 - rows[2]["weighted_f1"])
    assert cells[4] == "1" and float(cells[5]) == pytest.approx(gain, abs=0.01)
    assert float(cells[7]) < 0.01 and cells[8] == "-" and cells[10] == "-"


def test_the_bootstraps_counted_weighted_f1_is_sklearns():
    from sklearn.metrics import f1_score

    from copypaste_ser.evaluation.stats import _counted_weighted_f1

    rng = np.random.default_rng(3)
    metric = _counted_weighted_f1(5)
    for _ in range(50):
        y, p = rng.integers(0, 4, 40), rng.integers(0, 5, 40)  # label 4 only ever predicted
        assert metric(y, p) == pytest.approx(f1_score(y, p, average="weighted", zero_division=0), abs=1e-12)
    # string labels go through the same counts: the bootstrap of a named-label test equals sklearn's scores
    y = np.array(list("aabbccdd" * 5))
    sys_pred = np.where(np.arange(40) % 5 == 0, "a", y)
    r = paired_bootstrap(y, [np.full(40, "a")], [sys_pred], n_boot=100)
    assert r.mean_diff == pytest.approx(f1_score(y, sys_pred, average="weighted", zero_division=0)
                                        - f1_score(y, np.full(40, "a"), average="weighted", zero_division=0))


def test_a_reference_model_is_met_scheme_by_scheme(tmp_path):
    import csv

    from copypaste_ser.cli.main import app
    from typer.testing import CliRunner

    rows = []
    for k, fold in enumerate(["f1", "f2", "f3"]):
        for init, lift in (("frozen", 0.0), ("tuned", 0.01)):
            for scheme, gain in (("none", 0.0), ("n-cp", 0.03)):
                rows.append({"fold": fold, "init": init, "copypaste": scheme, "test": "clean", "training_data": "clean",
                             "seed": "0", "weighted_f1": 0.70 + gain + lift + 0.002 * k * (init == "tuned")})
    results = tmp_path / "results.csv"
    with open(results, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    same = CliRunner().invoke(app, ["against-baselines", str(results), "--reference", "frozen",
                                    "--reference-scheme", "same"])
    lines = [x for x in same.output.splitlines() if x.startswith("| tuned |")]
    # tuned minus frozen within each scheme: +1 + 0.2 k points, mean +1.20, for No CP and N-CP alike
    assert [x.split("|")[3].strip() for x in lines] == ["none", "n-cp"]
    assert all("| frozen | 3 | +1.20 |" in x for x in lines)
    plain = CliRunner().invoke(app, ["against-baselines", str(results), "--reference", "frozen"])
    ncp = next(x for x in plain.output.splitlines() if x.startswith("| tuned | clean | n-cp |"))
    assert "| frozen | 3 | +4.20 |" in ncp  # against frozen No CP
    bad = CliRunner().invoke(app, ["against-baselines", str(results), "--reference", "frozen",
                                   "--reference-scheme", "other"])
    assert "choose one of none, se-cp, n-cp, n+se-cp or same" in str(bad.exception)
    # the frozen model and a probe at once: the probe's No CP cells for every scheme, Holm over all four
    with open(results, "a", newline="") as f:
        csv.DictWriter(f, list(rows[0])).writerows(
            {**r, "init": "w-lr", "seed": "-", "weighted_f1": 0.69} for r in rows if r["init"] == "frozen"
            and r["copypaste"] == "none")
    both = CliRunner().invoke(app, ["against-baselines", str(results), "--reference", "frozen", "--reference",
                                    "w-lr", "--reference-scheme", "same"])
    lines = [x.split("|") for x in both.output.splitlines() if x.startswith("| tuned |")]
    assert [(x[3].strip(), x[4].strip(), x[6].strip()) for x in lines] == [
        ("none", "frozen", "+1.20"), ("none", "w-lr", "+2.20"), ("n-cp", "frozen", "+1.20"), ("n-cp", "w-lr", "+5.20")]
    from copypaste_ser.evaluation.stats import holm
    raw = [float(x[8]) for x in lines]
    assert [float(x[10]) for x in lines] == pytest.approx(holm(raw), rel=1e-2)  # over the four, not two
    assert "| frozen |" not in "".join(x for x in both.output.splitlines() if not x.startswith("| tuned |"))
    alone = CliRunner().invoke(app, ["against-baselines", str(results), "--reference", "frozen"])
    assert "| w-lr |" not in alone.output  # a probe is never compared as a model (any `-lr`, not only the known four)
