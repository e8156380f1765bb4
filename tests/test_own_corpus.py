"""Your own corpus (issue 14): label maps, speaker folds, refusals at prepare, training over
all folds, pooled reports, one meaning per preset, a run never left "running", a shared
feature cache, and the smoothed dev choice."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from copypaste_ser.errors import UserError

CODES = {"angry": "W", "happy": "F", "neutral": "N", "sad": "T"}  # EmoDB-like letters
LABEL_MAP = "w=angry,f=happy,n=neutral,t=sad"


@pytest.fixture(scope="module")
def own_audio(tmp_path_factory) -> Path:
    """4 speakers x 4 emotions x 3 utterances of generated audio."""
    from copypaste_ser.data.corpora.synthetic import generate

    root = tmp_path_factory.mktemp("own")
    generate(root / "audio", speakers=4, utterances_per_emotion=3, seed=2)
    return root


def write_csv(root: Path, name: str, keep=lambda spk, emo: True, split=None) -> Path:
    path = root / name
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "speaker"] + (["split"] if split else []))
        for wav in sorted((root / "audio").rglob("*.wav")):
            spk, emo, _ = wav.stem.split("_")
            if keep(spk, emo):
                w.writerow([f"audio/{wav.name}", CODES[emo], f"talker-{spk[-1]}"] + ([split(spk)] if split else []))
    return path


def _cli(*args, cwd=None):
    # one thread: torch's two-thread LSTM (Resemblyzer states) is ~70x slower while another job
    # holds the second core, which timed this out on a shared machine; results do not depend on it
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.run([sys.executable, "-m", "copypaste_ser", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)


# ---------------------------------------------------------------- prepare
def test_label_map_and_loso_folds_without_root(own_audio):
    from copypaste_ser.data.corpora import prepare_corpus

    csv_path = write_csv(own_audio, "list.csv")
    manifest, protocol = prepare_corpus("folder", None, csv=csv_path, label_map={"W": "anger", "f": "happy",
                                                                                 "n": "neutral", "t": "sad"})
    assert sorted(manifest.labels) == ["angry", "happy", "neutral", "sad"] and len(manifest) == 48
    manifest, protocol = prepare_corpus("folder", None, csv=csv_path, label_map=LABEL_MAP, folds="loso")
    assert protocol.names == [f"loso-talker-{i}" for i in range(4)]
    tested = [u for f in protocol.folds for u in f.test]
    assert sorted(tested) == sorted(u.id for u in manifest)  # every utterance tested once


def test_kfold_groups_cover_every_class():
    from copypaste_ser.data.corpora.folds import kfold_groups
    from copypaste_ser.data.manifest import Manifest, Utterance

    # 6 speakers; 'sad' only with s0 and s1: the two must land in different groups
    utts = [Utterance(f"{s}-{e}", "/x.wav", s, e, 1.0) for s in ("s0", "s1", "s2", "s3", "s4", "s5")
            for e in ("angry", "neutral") + (("sad",) if s in ("s0", "s1") else ())]
    groups = kfold_groups(Manifest("m", ["angry", "neutral", "sad"], utts, "neutral"), 3)
    assert sorted(len(g) for g in groups) == [2, 2, 2]
    assert not any({"s0", "s1"} <= set(g) for g in groups)


def test_kfold_groups_balance_utterances_per_class_not_only_speakers():
    from copypaste_ser.data.corpora.folds import _greedy_groups, _imbalance, fold_sizes, kfold_groups
    from copypaste_ser.data.manifest import Manifest, Utterance

    # 12 speakers from 2 to 46 utterances each, every class held by each: dealing speakers by
    # count alone gives folds of very different sizes
    rng = np.random.default_rng(1)
    labels = ["angry", "happy", "neutral", "sad"]
    utts = [Utterance(f"s{s}-{e}-{i}", "/x.wav", f"s{s:02d}", e, 1.0)
            for s in range(12) for e in labels for i in range(int(rng.integers(1, 4 + 3 * s)) // 2 + 1)]
    manifest = Manifest("m", labels, utts, "neutral")
    groups = kfold_groups(manifest, 4)
    assert sorted(s for g in groups for s in g) == sorted({u.speaker for u in utts})
    sizes = [sum(u.speaker in g for u in utts) for g in groups]
    assert max(sizes) <= 1.25 * len(utts) / 4 and min(sizes) >= 0.75 * len(utts) / 4, sizes  # the stated bound
    assert _imbalance(manifest, groups)[0] == 0  # every group holds every class
    assert _imbalance(manifest, groups) <= _imbalance(manifest, _greedy_groups(manifest, 4))
    assert kfold_groups(manifest, 4) == groups  # seeded: the same every time
    assert fold_sizes(manifest, groups).startswith(f"kfold-1 tests {sizes[0]} (angry ")


@pytest.mark.parametrize("name, keep, split, expected", [
    ("nodev.csv", lambda s, e: True, lambda s: "test" if s.endswith("3") else "train", "has no dev utterances"),
    ("rare.csv", lambda s, e: e != "sad" or s.endswith("3"),
     lambda s: {"spk03": "test", "spk02": "dev"}.get(s, "train"), "has no 'sad' in train"),
])
def test_prepare_refuses_what_train_cannot_use(own_audio, tmp_path, name, keep, split, expected):
    csv_path = write_csv(own_audio, name, keep, split)
    proc = _cli("prepare", "folder", "--csv", csv_path, "--out", tmp_path / "d", "--label-map", LABEL_MAP)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and str(csv_path) in lines[0] and expected in lines[0], proc.stderr
    assert not (tmp_path / "d").exists()


def test_prepare_warns_about_a_split_missing_a_class(own_audio, capsys):
    from copypaste_ser.data.corpora import prepare_corpus

    csv_path = write_csv(own_audio, "warn.csv", lambda s, e: e != "sad" or s != "spk02",
                         lambda s: {"spk03": "test", "spk02": "dev"}.get(s, "train"))
    _, protocol = prepare_corpus("folder", None, csv=csv_path, label_map=LABEL_MAP)
    err = capsys.readouterr().err
    assert "warning:" in err and "dev lacks sad" in err and "dev lacks sad" in protocol.description


@pytest.mark.parametrize("args, expected", [
    (["--label-map", "w"], "--label-map: 'w' is not RAW=NAME"),
    (["--folds", "2"], "--folds='2': use loso, a number of folds K >= 3"),
    (["--folds", "7", "--label-map", LABEL_MAP], "4 speakers cannot make 7"),
    ([], "unknown label 'W'"),
])
def test_prepare_folder_errors_are_one_line(own_audio, tmp_path, args, expected):
    proc = _cli("prepare", "folder", "--csv", write_csv(own_audio, "list.csv"), "--out", tmp_path / "d", *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr


def test_prepare_folder_has_its_own_help():
    proc = _cli("prepare", "folder", "--help")
    assert proc.returncode == 0
    assert "path,label,speaker[,split][,fold][,fold-NAME...]" in proc.stdout
    assert "default_rng(0)" in proc.stdout and "--folds loso" in proc.stdout


# ---------------------------------------------------------------- config and presets
def test_cpu_preset_is_what_the_cpu_configs_use():
    from copypaste_ser.training.config import make_config, normalized

    cfg = make_config("cpu")
    assert (cfg.width, cfg.chunk_seconds) == (4, 2.0)
    grid = Path(__file__).parents[1] / "configs" / "ravdess" / "cpu.yaml"
    from_grid = make_config(None, grid)
    assert (from_grid.width, from_grid.chunk_seconds, from_grid.threads) == (4, 2.0, 1)
    # runs made when width None meant the cpu model's 8 compare equal to an explicit 8
    assert normalized({**cfg.to_dict(), "width": None})["width"] == 8


def test_train_config_names_the_file_and_key(tmp_path, synthetic_corpus):
    bad = tmp_path / "grid.yaml"
    bad.write_text("data: x\nout: y\ntrain: {epochz: 3}\n")
    proc = _cli("train", "--data", synthetic_corpus, "--out", tmp_path / "r", "--config", bad)
    assert proc.returncode == 2 and f"{bad}:train: unknown training option 'epochz'" in proc.stderr


# ---------------------------------------------------------------- failures and the cache
def test_failed_train_is_marked_failed(tmp_path, synthetic_corpus, monkeypatch):
    import copypaste_ser.training.loop as train_mod
    from copypaste_ser.training.config import make_config

    def boom(*a, **k):
        raise RuntimeError("dev scoring broke")
    monkeypatch.setattr(train_mod, "predict_proba", boom)
    cfg = make_config("tiny", data=str(synthetic_corpus), epochs=1)
    with pytest.raises(RuntimeError):
        train_mod.train(cfg, tmp_path / "run", progress=False)
    status = json.loads((tmp_path / "run" / "run.json").read_text())
    assert status["status"] == "failed" and "dev scoring broke" in status["error"]


EXTRACT = """
import sys
from pathlib import Path
from copypaste_ser.features.cache import extract_features
from copypaste_ser.features.mfcc import FeatureConfig
from copypaste_ser.data.manifest import load_corpus
m, _ = load_corpus(Path(sys.argv[1]))
ids = [u.id for u in m][int(sys.argv[2])::2]
extract_features(m.subset(ids), FeatureConfig(), Path(sys.argv[1]), progress=False)
"""


def test_two_processes_share_one_feature_cache(tmp_path, synthetic_corpus):
    import shutil

    import numpy as np

    from copypaste_ser.data.audio import load_audio
    from copypaste_ser.data.manifest import load_corpus
    from copypaste_ser.features.cache import FeatureStore, cache_folder
    from copypaste_ser.features.mfcc import FeatureConfig, compute_features

    data = tmp_path / "data"
    shutil.copytree(synthetic_corpus, data, ignore=shutil.ignore_patterns("features"))
    procs = [subprocess.Popen([sys.executable, "-c", EXTRACT, str(data), str(half)],
                              env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}) for half in (0, 1)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    manifest, _ = load_corpus(data)
    cfg = FeatureConfig()
    store = FeatureStore(cache_folder(data, cfg))
    assert set(store.index) == {u.id for u in manifest}  # neither process lost the other's part
    for u in list(manifest)[:6]:
        np.testing.assert_allclose(store[u.id], compute_features(load_audio(u.audio, cfg.sample_rate), cfg), atol=1e-5)


# ---------------------------------------------------------------- selection and pooling
def test_smoothed_choice_waits_for_the_window():
    import torch

    from copypaste_ser.training.weight_selection import SmoothedChoice
    choice, model = SmoothedChoice(3), torch.nn.Linear(1, 1)
    assert choice.add(1, 0.0, model, last=False) == []
    assert [(e, s) for e, s, _ in choice.add(2, 1.0, model, last=False)] == [(1, 0.5)]
    assert [e for e, _, _ in choice.add(3, 0.0, model, last=True)] == [2, 3]


def test_pooling_refuses_overlapping_folds():
    from copypaste_ser.evaluation.pooled import pool, pooled_score

    a, b = {"u1": ("sad", "sad")}, {"u2": ("angry", "sad")}
    assert pool({"f1": a, "f2": a}) is None
    pooled = pool({"f1": a, "f2": b})
    assert pooled_score(pooled, ["angry", "sad"])["confusion"] == [[0, 1], [0, 1]]


# ---------------------------------------------------------------- the README's three commands
def test_own_corpus_to_a_pooled_loso_report(own_audio, tmp_path):
    write_csv(own_audio, "list.csv")
    work = own_audio
    steps = [["prepare", "folder", "--csv", "list.csv", "--label-map", LABEL_MAP, "--folds", "loso",
              "--out", tmp_path / "data"],
             ["train", "--data", tmp_path / "data", "--fold", "all", "--preset", "tiny", "--epochs", "1",
              "--threads", "1", "--quiet", "--out", tmp_path / "runs"],
             ["report", tmp_path / "runs", "--out", tmp_path / "report"]]
    printed = [_cli(*step, cwd=work) for step in steps]
    assert [p.returncode for p in printed] == [0, 0, 0], [p.stderr for p in printed]
    assert "pooled over folds (48 test utterances, each once): weighted F1" in printed[1].stdout
    summary = json.loads((tmp_path / "runs" / "summary.json").read_text())
    assert summary["pooled_utterances"] == 48 and 0 <= summary["pooled_weighted_f1"] <= 1
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Pooled over folds" in report and "| 4 | 48 |" in report and "Pooled confusion" in report
    assert all((tmp_path / "runs" / f"loso-talker-{i}" / "seed-0" / "run.json").is_file() for i in range(4))


def test_train_fold_all_adds_a_seed_later_and_resumes_without_touching_finished_runs(own_audio, tmp_path):
    write_csv(own_audio, "list.csv")
    prep = _cli("prepare", "folder", "--csv", "list.csv", "--label-map", LABEL_MAP, "--folds", "loso",
                "--out", tmp_path / "data", cwd=own_audio)
    assert prep.returncode == 0, prep.stderr
    train = ["train", "--data", tmp_path / "data", "--fold", "all", "--preset", "tiny", "--epochs", "1",
             "--threads", "1", "--quiet", "--out", tmp_path / "runs"]
    assert _cli(*train, cwd=own_audio).returncode == 0
    seed0 = {p: p.read_bytes() for p in (tmp_path / "runs").glob("loso-*/seed-0/model.pt")}
    assert len(seed0) == 4
    # one run as an older version wrote it, before fields were added: it still counts as the same run
    old = next(iter(seed0)).parent / "config.yaml"
    old.write_text("".join(x for x in old.read_text().splitlines(True)
                           if not x.startswith(("copypaste_join:", "noise_copies:"))))
    again = _cli(*train, "--seed", "1", cwd=own_audio)  # a second seed, in a second command
    assert again.returncode == 0, again.stderr
    assert {p: p.read_bytes() for p in seed0} == seed0  # the finished seed is reused, not retrained
    rows = list(csv.DictReader(open(tmp_path / "runs" / "results.csv")))
    assert sorted((r["fold"], r["seed"]) for r in rows) == sorted((f"loso-talker-{i}", s) for i in range(4)
                                                                   for s in "01")
    assert all(r["dev_weighted_f1"] not in ("", None) for r in rows)
    # the whole set again: every run is finished, nothing is trained and the tables stay the same
    table = (tmp_path / "runs" / "results.csv").read_bytes()
    assert _cli(*train, "--seed", "0", "--seed", "1", cwd=own_audio).returncode == 0
    assert (tmp_path / "runs" / "results.csv").read_bytes() == table


def test_the_documented_own_corpus_path_with_k_folds_two_seeds_and_pooled_baselines(own_audio, tmp_path):
    """docs/guide.md "Your own corpus": prepare --folds K, two seeds in two commands, the
    baselines in the same folds, one report pooling both."""
    write_csv(own_audio, "list.csv")
    data, runs, base = tmp_path / "data", tmp_path / "runs", tmp_path / "baselines"
    prep = _cli("prepare", "folder", "--csv", "list.csv", "--label-map", LABEL_MAP, "--folds", "3",
                "--out", data, cwd=own_audio)
    assert prep.returncode == 0, prep.stderr
    assert "test utterances per fold: kfold-1 " in prep.stdout
    train = ["train", "--data", data, "--fold", "all", "--preset", "tiny", "--epochs", "1", "--threads", "1",
             "--quiet", "--out", runs]
    for seed in ("0", "1"):
        done = _cli(*train, "--seed", seed, cwd=own_audio)
        assert done.returncode == 0, done.stderr
    made = _cli("baseline", data, "--out", base, cwd=own_audio)
    assert made.returncode == 0, made.stderr
    rows = list(csv.DictReader(open(base / "results.csv")))
    assert {r["init"] for r in rows} >= {"egemaps-svm", "mfcc-lr"} and {r["fold"] for r in rows} == {
        "kfold-1", "kfold-2", "kfold-3"}
    from copypaste_ser.evaluation.predictions_file import read_predictions
    preds = read_predictions(base / "predictions.json")
    assert sum(len(v) for k, v in preds.items() if k.split("|")[1] == "egemaps-svm") == 48  # every utterance once
    rep = _cli("report", runs, base, "--out", tmp_path / "report", cwd=own_audio)
    assert rep.returncode == 0, rep.stderr
    report = (tmp_path / "report" / "report.md").read_text()
    pooled = report[report.index("## Pooled over folds"):]
    assert "eGeMAPS" in pooled or "egemaps" in pooled
    assert sorted({(r["fold"], r["seed"]) for r in csv.DictReader(open(tmp_path / "report" / "results.csv"))
                   if r["init"] == "scratch"}) == [(f"kfold-{i}", s) for i in (1, 2, 3) for s in "01"]
