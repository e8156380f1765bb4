"""The grid runner and its report, on the synthetic corpus with the tiny preset."""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import weighted_f1_from_confusion

from copypaste_ser.data.audio import write_audio
from copypaste_ser.errors import UserError
from copypaste_ser.experiments.grid import run_grid
from copypaste_ser.experiments.grid_config import GridConfig, cells
from copypaste_ser.experiments.report import score_table, write_report
from copypaste_ser.training.config import make_config


class Crash(RuntimeError):
    pass


@pytest.fixture
def fake_musan(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for k in range(3):
        write_audio(tmp_path / "musan" / "noise" / f"n{k}.wav", 0.1 * rng.standard_normal(16000).astype(np.float32))
        write_audio(tmp_path / "musan" / "music" / f"m{k}.wav", (0.2 * np.sin(2 * np.pi * (220 + 50 * k) * t)).astype(np.float32))
    return tmp_path / "musan"


def _grid(tmp_path, synthetic_corpus, fake_musan, **kw):
    raw = dict(data=str(synthetic_corpus), out=str(tmp_path / "grid"), preset="tiny",
               train={"epochs": 1, "threads": 1, "noise_epoch_fraction": 0.2},
               copypaste=["none", "n-cp"], training_data=["clean", "clean+noise"], seeds=[0],
               snrs=[10], noise_root=str(fake_musan), workers=1)
    raw.update(kw)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    return GridConfig.load(path)


def test_grid_runs_resumes_and_reports(tmp_path, synthetic_corpus, fake_musan, monkeypatch, capsys):
    grid = _grid(tmp_path, synthetic_corpus, fake_musan)
    assert len(cells(grid)) == 4
    import copypaste_ser.experiments.grid as E
    real = E.run_cell
    calls, crashed = [], []

    def flaky(g, cell):
        calls.append(cell)
        if len(calls) == 3 and not crashed:
            crashed.append(cell)
            raise Crash("the grid dies during its third run")
        return real(g, cell)

    monkeypatch.setattr(E, "run_cell", flaky)
    with pytest.raises(Crash):
        run_grid(grid, progress=False)
    calls.clear()
    capsys.readouterr()
    results = run_grid(grid, progress=True)
    assert len(calls) == 2 and calls[0] == crashed[0]  # the two finished runs were not redone
    said = [x for x in capsys.readouterr().out.splitlines() if "runs done;" in x]  # no terminal: a line a run
    assert [x.split(";")[0] for x in said] == ["grid: 1/2 runs done", "grid: 2/2 runs done"]
    assert str(tmp_path / "grid") in said[0]
    calls.clear()
    run_grid(grid, progress=False)
    assert calls == []
    log = [json.loads(x) for x in (tmp_path / "grid" / "grid-log.jsonl").read_text().splitlines()]
    # the crashed invocation is logged too: two runs finished before the crash
    assert [(e["status"], e["runs_completed"]) for e in log] == [("failed", 2), ("complete", 2), ("complete", 0)]
    rows = list(csv.DictReader(open(results)))
    assert len(rows) == 4 * 2  # clean + 10 dB per run
    assert {r["test"] for r in rows} == {"clean", "10dB"}
    report = write_report(results, tmp_path / "report", "test", command="copypaste-ser grid grid.yaml")
    text = report.read_text()
    assert "| Clean+Noise |" in text and "N-CP" in text and "copypaste-ser grid grid.yaml" in text
    assert "## Concat probe, init scratch" in text
    assert "in 3 invocation(s) that completed 4 runs" in text
    assert "Machines of the invocations" not in text  # one machine: nothing to tell apart
    assert "training time" in text and "h of one CPU core (sum over runs)" in text
    # runs made on two CPUs (float-level kernels differ): the report names both
    log[0]["machine"] = {**log[0]["machine"], "cpu": "Other CPU", "simd": "avx2"}
    (tmp_path / "grid" / "grid-log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    two_machines = write_report(results, tmp_path / "report2", "test").read_text()
    line = next(x for x in two_machines.splitlines() if x.startswith("Machines of the invocations"))
    assert "Other CPU, avx2" in line and log[1]["machine"]["cpu"] in line
    # runs trained on a GPU: the training time is not one CPU core's
    log[0]["machine"]["gpu"] = "NVIDIA H200"
    (tmp_path / "grid" / "grid-log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    on_gpu = write_report(results, tmp_path / "report3", "test").read_text()
    assert "h of one worker process on NVIDIA H200 (sum over runs)" in on_gpu and "one CPU core" not in on_gpu
    assert "clean test data (as the paper's Table 2)" in text and "10 dB SNR (as the paper's Table 5)" in text
    # noisy tests took their VAD from the noisy audio; one fold: bootstrap over the run folders' predictions
    assert {r["test_vad"] for r in rows if r["test"] == "10dB"} == {"noisy"} and "old clean-audio VAD" not in text
    assert text.count("Tested: one fold, so no fold-level test; paired bootstrap over the") == 2
    from copypaste_ser.evaluation.predictions_file import read_predictions
    assert len(read_predictions(tmp_path / "report" / "predictions.json")) == 8
    assert (tmp_path / "report" / "scores_by_scheme.png").is_file()
    assert (tmp_path / "report" / "score_vs_snr.png").is_file()
    assert (tmp_path / "report" / "confusions.png").is_file()
    _check_merged_report(tmp_path, rows)


def _check_merged_report(tmp_path, rows):
    """Slices run apart merge into one report; the last file wins for a run in both."""
    confusions = json.loads((tmp_path / "grid" / "confusions.json").read_text())
    clean, noisy = tmp_path / "a", tmp_path / "b"
    for folder, data in ((clean, "clean"), (noisy, "clean+noise")):
        folder.mkdir()
        part = [r for r in rows if r["training_data"] == data]
        with open(folder / "results.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(part[0]))
            w.writeheader()
            w.writerows(part)
        (folder / "confusions.json").write_text(json.dumps({k: v for k, v in confusions.items() if f"|{data}|" in k}))
    override = dict(rows[0], weighted_f1="0.123456")
    with open(tmp_path / "override.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(override))
        w.writeheader()
        w.writerow(override)
    out = tmp_path / "merged"
    write_report([clean / "results.csv", noisy / "results.csv", tmp_path / "override.csv"], out, "merged")
    merged = list(csv.DictReader(open(out / "results.csv")))
    assert len(merged) == len(rows)
    assert [float(r["weighted_f1"]) for r in merged if r["training_data"] == override["training_data"]
            and r["copypaste"] == override["copypaste"] and r["test"] == override["test"]] == [0.123456]
    assert json.loads((out / "confusions.json").read_text()) == confusions
    assert "| Clean+Noise |" in (out / "report.md").read_text()
    with pytest.raises(UserError, match="not a grid results.csv"):
        write_report([tmp_path / "grid.yaml"], out, "bad")


def test_restricted_slice_and_bad_values(tmp_path, synthetic_corpus, fake_musan):
    grid = _grid(tmp_path, synthetic_corpus, fake_musan)
    part = grid.restricted(copypaste=["n-cp"], training_data=["clean"])
    assert {(c.copypaste, c.training_data) for c in cells(part)} == {("n-cp", "clean")}
    with pytest.raises(UserError, match="se-cp"):
        grid.restricted(copypaste=["se-cp"])
    with pytest.raises(UserError, match="folds 'cv-1' is not in the config"):
        grid.restricted(folds=["cv-1"])
    cv = dataclasses.replace(grid, folds=["cv-*"])
    assert cv.restricted(folds=["cv-2", "cv-3"]).folds == ["cv-2", "cv-3"]
    with pytest.raises(UserError, match="folds 'loso-1'"):
        cv.restricted(folds=["loso-1"])
    with pytest.raises(UserError, match="unknown grid option 'seed'"):
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"data": "d", "out": "o", "seed": 1}))
        GridConfig.load(tmp_path / "bad.yaml")


def test_slices_run_one_after_the_other_add_up_in_results_csv(tmp_path, synthetic_corpus, fake_musan):
    """`grid --seed 0` then `grid --seed 1`: results.csv and grid.yaml describe the whole grid,
    so the second slice does not drop the first one's rows."""
    grid = _grid(tmp_path, synthetic_corpus, fake_musan, copypaste=["none"], training_data=["clean"], seeds=[0, 1],
                 snrs=[])
    for seed in (0, 1):
        results = run_grid(grid.restricted(seeds=[seed]), progress=False)
        rows = list(csv.DictReader(open(results)))
        assert sorted({r["seed"] for r in rows}) == [str(s) for s in range(seed + 1)]
    assert yaml.safe_load((tmp_path / "grid" / "grid.yaml").read_text())["seeds"] == [0, 1]


def test_missing_init_model_is_refused(tmp_path, synthetic_corpus, fake_musan):
    grid = _grid(tmp_path, synthetic_corpus, fake_musan, init=[str(tmp_path / "nope.pt")])
    with pytest.raises(UserError, match="nope.pt is missing"):
        run_grid(grid, progress=False)


def _rows(folds, seeds, gains, test="clean", **extra):
    """Result rows: scheme s in fold i, seed k scores 0.4 + 0.03 i + 0.01 k + gains[s][i]."""
    return [{"fold": f, "init": "scratch", "training_data": "clean", "copypaste": s, "seed": str(k), "test": test,
             "weighted_f1": 0.4 + 0.03 * i + 0.01 * k + g[i], "train_seconds": "1", **extra}
            for s, g in gains.items() for i, f in enumerate(folds) for k in seeds]


def test_report_tests_folds_not_runs_and_holm_corrects_the_table(tmp_path):
    from scipy import stats as st
    folds = ["cv-1", "cv-2", "cv-3", "cv-4"]
    gains = {"none": [0] * 4, "se-cp": [0.04, 0.05, 0.03, 0.06], "n-cp": [0.02, -0.01, 0.03, 0.01]}
    rows = _rows(folds, [0, 1], gains)
    # by hand: seeds cancel in the paired fold means, so the differences are the gains
    p_se = st.ttest_1samp(gains["se-cp"], 0).pvalue
    p_n = st.ttest_1samp(gains["n-cp"], 0).pvalue
    assert p_se < p_n
    holm_se, holm_n = 2 * p_se, max(2 * p_se, p_n)  # Holm over the table's 2 cells
    line = score_table(rows, "scratch", "clean").splitlines()[2]
    assert 0.01 < holm_se < 0.05 and f"(+4.50*, p={holm_se:.2f})" in line and f"(+1.25, p={holm_n:.2f})" in line

    rows += _rows(folds, [0, 1], gains, test="10dB")  # no test_vad: scored with the old clean VAD
    with open(tmp_path / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    text = write_report(tmp_path / "results.csv", tmp_path / "out", "t").read_text()
    assert text.count("Tested: paired t-test over 4 folds of seed-averaged weighted F1 against No CP, "
                      "Holm-corrected over the 2 cell(s) of this table") == 2
    assert "10 dB SNR (as the paper's Table 5), made with the old clean-audio VAD" in text
    assert "clean test data (as the paper's Table 2)\n" in text
    ci = st.t.interval(0.95, 3, loc=np.mean(gains["se-cp"]), scale=st.sem(gains["se-cp"]))
    assert f"| SE-CP | +4.50 | [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}] | {p_se:.4f} | 0.1250 |" in text


def test_one_fold_report_says_no_fold_test_is_possible(tmp_path):
    rows = _rows(["default"], [0, 1, 2], {"none": [0], "n-cp": [0.05]})
    with open(tmp_path / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    text = write_report(tmp_path / "results.csv", tmp_path / "out", "t").read_text()
    assert "| Clean | 41.00 ± 1.00 | 46.00 ± 1.00 (+5.00) |" in text
    assert "Not tested: one fold, so no fold-level test is possible" in text
    assert "paired bootstrap over the test utterances" in text and "## Statistics" not in text


def test_baseline_in_the_same_folds(tmp_path, synthetic_corpus, fake_musan):
    pytest.importorskip("opensmile")
    from copypaste_ser.evaluation.baselines import run_baseline
    grid = _grid(tmp_path, synthetic_corpus, fake_musan, snrs=[0])
    from copypaste_ser.evaluation.baselines import available_baselines
    from copypaste_ser.features.encoders import resemblyzer_available
    rows = run_baseline(grid, progress=False)
    assert {r["test"] for r in rows} == {"clean", "0dB"}
    inits = {r["init"] for r in rows}
    assert inits == set(available_baselines())
    assert {"egemaps-svm", "mfcc-lr"} <= inits and ("rzstates-lr" in inits) == resemblyzer_available()
    # mfcc-lr recomputed by hand from the cached MFCC of the same fold
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from copypaste_ser.data.manifest import load_corpus
    from copypaste_ser.features.cache import extract_features
    from copypaste_ser.features.mfcc import FeatureConfig
    manifest, protocol = load_corpus(Path(grid.data))
    fold = protocol.fold(None)
    stats = {}
    for split in ("train", "dev", "test"):
        ids = fold.split(split)
        store = extract_features(manifest.subset(ids), FeatureConfig(), Path(grid.data), progress=False)
        stats[split] = (np.stack([np.concatenate([store[i].astype(np.float64).mean(0), store[i].astype(np.float64).std(0)])
                                  for i in ids]).astype(np.float32),
                        [manifest.label_index(manifest[i].emotion) for i in ids])
    best = max((f1_score(stats["dev"][1], clf.predict(stats["dev"][0]), average="weighted"), -k, clf)
               for k, clf in enumerate(make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
                                       .fit(*stats["train"]) for c in (0.01, 0.1, 1.0)))[2]
    expected = f1_score(stats["test"][1], best.predict(stats["test"][0]), average="weighted")
    got = next(r["weighted_f1"] for r in rows if r["init"] == "mfcc-lr" and r["test"] == "clean")
    assert got == pytest.approx(expected, abs=1e-6) and got > 0.4  # chance is 0.25
    cached = json.loads((tmp_path / "grid" / "baseline" / "results.json").read_text())
    assert cached == rows


def test_fold_table_lists_each_test_fold():
    from copypaste_ser.experiments.report import fold_table

    def row(fold, init, scheme, seed, f1):
        return {"fold": fold, "init": init, "training_data": "clean", "copypaste": scheme, "seed": seed,
                "test": "clean", "weighted_f1": f1}
    rows = [row(f, "scratch", s, k, 0.1 * i + 0.02 * k + (0.05 if s == "n-cp" else 0))
            for i, f in enumerate(["cv-1", "cv-2"]) for s in ("none", "n-cp") for k in (0, 1)]
    rows += [row("cv-1", "egemaps-svm", "none", "-", 0.5), row("cv-2", "egemaps-svm", "none", "-", 0.6)]
    lines = fold_table(rows, "scratch").splitlines()
    assert lines[0] == "| Test fold | No CP | N-CP | eGeMAPS + SVM |"
    assert lines[2] == "| cv-1 | 1.00 | 6.00 | 50.00 |" and lines[3] == "| cv-2 | 11.00 | 16.00 | 60.00 |"
    assert fold_table([r for r in rows if r["fold"] == "cv-1"], "scratch") == ""


def test_leave_one_speaker_out_fold_is_scored_without_the_probe(tmp_path, synthetic_corpus, fake_musan):
    from copypaste_ser.data.manifest import load_corpus
    from copypaste_ser.experiments.grid import cell_done

    loso = [n for n in load_corpus(synthetic_corpus)[1].names if n.startswith("loso-")][0]
    grid = _grid(tmp_path, synthetic_corpus, fake_musan, folds=[loso], copypaste=["n-cp"],
                 training_data=["clean"], snrs=[])
    run_grid(grid, progress=False)
    run = cells(grid)[0].path(tmp_path / "grid")
    scores = json.loads((run / "scores.json").read_text())
    assert scores["clean"]["probe"] is None  # one test speaker: no cross-speaker pair to probe
    assert cell_done(run, [])
    assert scores["clean"]["weighted_f1"] == pytest.approx(weighted_f1_from_confusion(scores["clean"]["confusion"]))


def test_a_failing_run_stops_the_parallel_grid_with_one_line(tmp_path, synthetic_corpus, fake_musan):
    with pytest.raises(UserError, match=r"grid.yaml:train: copypaste_order must be one of .*'sideways'"):
        _grid(tmp_path, synthetic_corpus, fake_musan, train={"copypaste_order": "sideways"})  # refused at load
    grid = _grid(tmp_path, synthetic_corpus, fake_musan, copypaste=["n-cp"], training_data=["clean"],
                 seeds=[0, 1, 2], snrs=[], workers=2, train={"epochs": 1, "threads": 1})
    # a user's folder where one run goes, inside the grid's folder: its worker refuses it, which stops the grid
    from copypaste_ser.experiments.grid import claim_grid_folder
    claim_grid_folder(tmp_path / "grid")
    mine = cells(grid)[1].path(tmp_path / "grid")
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"grid run .*/n-cp/seed-1 failed: .*is not a copypaste-ser run "
                                        r"folder") as err:
        run_grid(grid, progress=False)
    assert "\n" not in str(err.value) and (mine / "notes.txt").read_text() == "mine"


def test_probe_pairs_need_two_speakers(synthetic_corpus):
    from copypaste_ser.data.manifest import load_corpus
    from copypaste_ser.evaluation.evaluate import has_probe_pair

    manifest, protocol = load_corpus(synthetic_corpus)
    test = protocol.fold(protocol.default).test
    assert len({manifest[i].speaker for i in test}) > 1 and has_probe_pair(manifest, test)
    one = [i for i in test if manifest[i].speaker == manifest[test[0]].speaker]
    assert not has_probe_pair(manifest, one)
    assert not has_probe_pair(manifest, [i for i in test if manifest[i].emotion != manifest.neutral])


ROOT = Path(__file__).parents[1]
#: every grid config: the shipped recipes (configs/<corpus>/) and those beside the results they made
GRID_CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p.parent.name != "train") + sorted(
    p for p in (ROOT / "docs" / "results").rglob("*.yaml") if "report" not in p.parts)


@pytest.mark.parametrize("path", GRID_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_grid_configs_load_and_make_valid_training_configs(path):
    grid = GridConfig.load(path)
    assert grid.preset in ("cpu", "paper", "small", "tiny") and set(grid.copypaste) <= {"none", "se-cp", "n-cp", "n+se-cp"}
    # relative to the file, each lands in the repository's data/ and runs/ wherever the file lives
    assert Path(grid.data).resolve().parent == ROOT / "data"
    assert (ROOT / "runs") in Path(grid.out).resolve().parents
    config = make_config(grid.preset, **{**grid.train, "data": grid.data})
    assert config.epochs > 0 and config.batch_size > 0


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "train").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_train_configs_make_valid_training_configs(path):
    raw = yaml.safe_load(path.read_text())
    config = make_config(None, path, data="data/x")
    assert raw and all(getattr(config, key) == value for key, value in raw.items())


def test_interrupting_a_parallel_grid_stops_its_workers_at_once(tmp_path, synthetic_corpus, fake_musan,
                                                                monkeypatch):
    import multiprocessing as mp

    import copypaste_ser.experiments.grid as E
    import copypaste_ser.experiments.launchers as L
    grid = _grid(tmp_path, synthetic_corpus, fake_musan, workers=2)

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(L, "wait", ctrl_c)  # Ctrl-C while the first runs train
    with pytest.raises(KeyboardInterrupt):
        run_grid(grid, progress=False)
    assert mp.active_children() == []
    # the queued runs were cancelled, not trained on the way out
    assert not any(E.cell_done(c.path(tmp_path / "grid"), grid.snrs) for c in cells(grid))
    log = [json.loads(x) for x in (tmp_path / "grid" / "grid-log.jsonl").read_text().splitlines()]
    assert [e["status"] for e in log] == ["interrupted"]
    monkeypatch.undo()
    run_grid(grid, progress=False)
    assert all(E.cell_done(c.path(tmp_path / "grid"), grid.snrs) for c in cells(grid))


def test_an_interrupted_egemaps_extraction_resumes_from_its_last_save(synthetic_corpus, monkeypatch):
    pytest.importorskip("opensmile")
    import copypaste_ser.evaluation.baselines as B
    from copypaste_ser.data.manifest import load_corpus

    manifest, _ = load_corpus(synthetic_corpus)
    ids = [u.id for u in manifest][:5]
    cache = synthetic_corpus / "features" / "egemaps" / "resume-test.npz"
    monkeypatch.setattr(B, "EGEMAPS_SAVE_EVERY", 2)
    real, seen = B.load_audio, []

    def fail_on_fifth(path, *a, **k):
        seen.append(path)
        if len(seen) == 5:
            raise KeyboardInterrupt  # the user's Ctrl-C during the fifth utterance
        return real(path, *a, **k)

    monkeypatch.setattr(B, "load_audio", fail_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        B.egemaps(manifest, ids, synthetic_corpus, condition="resume-test", progress=False)
    with np.load(cache) as z:
        assert z["ids"].tolist() == ids[:4]  # saved after the second and the fourth
    seen.clear()
    monkeypatch.setattr(B, "load_audio", lambda path, *a, **k: seen.append(path) or real(path, *a, **k))
    feats = B.egemaps(manifest, ids, synthetic_corpus, condition="resume-test", progress=False)
    assert len(seen) == 1 and feats.shape == (5, 88)  # only the fifth was computed again


def test_baseline_scores_are_reused_only_for_the_same_corpus_folds_and_tests(tmp_path, synthetic_corpus,
                                                                             fake_musan, monkeypatch, capsys):
    from copypaste_ser.evaluation import baselines

    calls = []

    def fake_scores(grid, progress=True, names=None):
        calls.append(list(grid.snrs))
        return [{"fold": "default", "init": "egemaps-svm", "test": "clean", "weighted_f1": 0.5}], {}

    monkeypatch.setattr(baselines, "score_baselines", fake_scores)
    grid = _grid(tmp_path, synthetic_corpus, fake_musan, snrs=[10])
    first = baselines.run_baseline(grid, progress=False)
    again = baselines.run_baseline(grid, progress=True)  # a later slice of the same grid
    assert again == first and calls == [[10]]
    assert "baseline: reusing" in capsys.readouterr().out
    baselines.run_baseline(_grid(tmp_path, synthetic_corpus, fake_musan, snrs=[10, 0]), progress=False)
    assert calls == [[10], [10, 0]]  # another test condition: scored again
    (tmp_path / "grid" / "baseline" / "key.json").unlink()  # a grid made before the key: scored again
    baselines.run_baseline(grid, progress=False)
    assert calls == [[10], [10, 0], [10]]
    baselines.run_baseline(grid, progress=False, names=["mfcc-lr"])  # fewer baselines (others held elsewhere)
    assert calls == [[10], [10, 0], [10], [10]]


def test_a_grid_slice_scores_the_baselines_of_the_whole_grid(tmp_path, synthetic_corpus, fake_musan, monkeypatch):
    from copypaste_ser.evaluation import baselines
    from copypaste_ser.experiments import grid as grid_module

    scored = []
    monkeypatch.setattr(baselines, "run_baseline", lambda g, progress=True, names=None: scored.append(g))
    for name in ("_prefill_features", "_run_cells", "collect"):  # no training: only the baseline call matters
        monkeypatch.setattr(grid_module, name, lambda *a, **k: None)
    whole = _grid(tmp_path, synthetic_corpus, fake_musan, seeds=[0, 1], baseline=True)
    grid_module.run_grid(whole.restricted(seeds=[1]), progress=False)
    assert len(scored) == 1 and scored[0] is whole


def test_baseline_method_scores_only_that_baseline_and_refuses_an_unknown_one(tmp_path, synthetic_corpus):
    import csv

    from copypaste_ser.errors import UserError
    from copypaste_ser.experiments.baseline_folds import run_baselines

    out = run_baselines(synthetic_corpus, tmp_path / "b", fold="default", methods=["mfcc-lr"], progress=False)
    rows = list(csv.DictReader(open(out)))
    assert {r["init"] for r in rows} == {"mfcc-lr"} and {r["fold"] for r in rows} == {"default"}
    with pytest.raises(UserError, match="--method: unknown baseline 'svm'; choose from egemaps-svm, mfcc-lr"):
        run_baselines(synthetic_corpus, tmp_path / "c", methods=["svm"], progress=False)
    assert not (tmp_path / "c").exists()  # refused before anything was written
