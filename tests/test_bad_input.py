"""Bad input to every command: one line ``error: ...``, exit status 2, no traceback, and
nothing the user had (corpus, cache, runs, grid) touched; checks that write nothing at all
also leave no new ``--out`` behind.

Each case is ``(id, argv, expected text, flags)``. In argv and in the files a case writes,
``@NAME`` stands for a path of the module's world (see :func:`world`) or the test's own
scratch folder (``@TMP``; ``@OUT`` there must not appear). The commands run in-process
through ``cli.main`` (as ``copypaste-ser`` does), which is what keeps 70+ cases fast.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from copypaste_ser.data.audio import write_audio


@dataclass(frozen=True)
class Case:
    id: str
    argv: str
    expect: str
    files: dict = field(default_factory=dict)   # name in @TMP -> text (with @NAME)
    repeat: int = 1                              # run it again: the same error (a re-run)
    writes_nothing: bool = True                  # @OUT must not appear


def grid_yaml(**changes) -> str:
    raw = dict(data="@DATA", out="@OUT", preset="tiny", train={"epochs": 1, "threads": 1},
               copypaste=["none"], training_data=["clean"], seeds=[0], snrs=[], workers=1)
    raw.update(changes)
    return yaml.safe_dump({k: v for k, v in raw.items() if v is not None})


T = "train --data @DATA --out @OUT --preset tiny --quiet "
CFG = T + "--config @TMP/cfg.yaml"
G = "grid @TMP/g.yaml"
CASES = [
    # ---- train: options (checked before the corpus is read or --out made)
    Case("seed-negative", T + "--seed -1", "--seed: must be an integer >= 0"),
    Case("seed-too-big", T + "--seed 4294967296", "--seed: must be an integer"),
    Case("seed-one-of-several", T + "--seed 0 --seed -2", "--seed: must be an integer >= 0 and <= 4294967295, not -2"),
    Case("batch-size-0", T + "--batch-size 0", "--batch-size: must be an integer >= 2"),
    Case("batch-size-1", T + "--batch-size 1", "--batch-size: must be an integer >= 2"),
    Case("lr-negative", T + "--lr -1", "--lr: must be a number > 0"),
    Case("lr-zero", T + "--lr 0", "--lr: must be a number > 0"),
    Case("lr-nan", T + "--lr nan", "--lr: must be a number > 0 and <= 10, not nan"),
    Case("lr-inf", T + "--lr inf", "--lr: must be a number"),
    Case("width-negative", T + "--width -1", "--width: must be an integer >= 1"),
    Case("width-zero", T + "--width 0", "--width: must be an integer >= 1"),
    Case("threads-negative", T + "--threads -1", "--threads: must be an integer >= 0"),
    Case("chunk-zero", T + "--chunk-seconds 0", "--chunk-seconds: must be a number >= 0.1"),
    Case("chunk-negative", T + "--chunk-seconds -2", "--chunk-seconds: must be a number >= 0.1"),
    Case("chunk-nan", T + "--chunk-seconds nan", "--chunk-seconds: must be a number"),
    Case("epochs-zero", T + "--epochs 0", "--epochs: must be an integer >= 1"),
    Case("epochs-negative", T + "--epochs -3", "--epochs: must be an integer >= 1"),
    Case("copypaste-typo", T + "--copypaste n-cpp", "--copypaste: must be one of none, n-cp, se-cp, n+se-cp"),
    Case("copypaste-case", T + "--copypaste NONE", "--copypaste: must be one of"),
    Case("preset-unknown", "train --data @DATA --out @OUT --preset huge", "--preset: must be one of paper, cpu, small, tiny"),
    Case("noise-fraction-zero", T + "--noise-epoch-fraction 0", "--noise-epoch-fraction: must be a number > 0"),
    Case("noise-fraction-big", T + "--noise-epoch-fraction 1.5", "--noise-epoch-fraction: must be a number > 0 and <= 1"),
    Case("encoder-lr-negative", T + "--encoder-lr-scale -1", "--encoder-lr-scale: must be a number >= 0"),
    # ---- train: a config file (file:key)
    Case("cfg-epochs-text", CFG, "cfg.yaml:epochs: must be an integer >= 1", {"cfg.yaml": "epochs: three\n"}),
    Case("cfg-epochs-bool", CFG, "cfg.yaml:epochs: must be an integer", {"cfg.yaml": "epochs: true\n"}),
    Case("cfg-lr-text", CFG, "cfg.yaml:lr: must be a number > 0", {"cfg.yaml": "lr: fast\n"}),
    Case("cfg-lr-nan", CFG, "cfg.yaml:lr: must be a number", {"cfg.yaml": "lr: .nan\n"}),
    Case("cfg-batch-float", CFG, "cfg.yaml:batch_size: must be an integer", {"cfg.yaml": "batch_size: 1.5\n"}),
    Case("cfg-copypaste-typo", CFG, "cfg.yaml:copypaste: must be one of", {"cfg.yaml": "copypaste: n-cpp\n"}),
    Case("cfg-noise-aug-text", CFG, "cfg.yaml:noise_aug: must be true or false", {"cfg.yaml": "noise_aug: 'yes'\n"}),
    Case("cfg-seed-negative", CFG, "cfg.yaml:seed: must be an integer >= 0", {"cfg.yaml": "seed: -5\n"}),
    Case("cfg-features-value", CFG, "cfg.yaml:features: num_ceps must be an integer >= 1",
         {"cfg.yaml": "features: {num_ceps: 0}\n"}),
    Case("cfg-features-key", CFG, "cfg.yaml:features: unknown option 'ceps'", {"cfg.yaml": "features: {ceps: 3}\n"}),
    Case("cfg-features-scalar", CFG, "cfg.yaml:features: must be a mapping", {"cfg.yaml": "features: 3\n"}),
    Case("cfg-unknown-key", CFG, "cfg.yaml: unknown training option 'epoch'", {"cfg.yaml": "epoch: 3\n"}),
    Case("cfg-not-mapping", CFG, "expected a mapping of training options", {"cfg.yaml": "- 1\n- 2\n"}),
    Case("cfg-missing", T + "--config @TMP/none.yaml", "none.yaml: no such file"),
    Case("seed-twice", T + "--seed 0 --seed 0", "--seed: seed 0 is given twice; give each seed once"),
    Case("cfg-duplicate-key", CFG, "cfg.yaml:2: key 'epochs' is given twice; keep one",
         {"cfg.yaml": "epochs: 1\nepochs: 2\n"}),
    Case("grid-duplicate-key", G, "g.yaml:", {"g.yaml": grid_yaml() + "seeds: [1]\n"}),
    Case("grid-not-a-mapping", G, "g.yaml: not a grid config", {"g.yaml": "- a\n- b\n"}),
    # ---- train: paths and prepared corpora
    Case("out-is-a-file", "train --data @DATA --out @WAV --preset tiny --quiet", "is a file, not a folder"),
    Case("out-read-only", "train --data @DATA --out /sys/copypaste-ser-test --preset tiny --quiet --epochs 1",
         "cannot create the folder"),
    Case("data-missing", "train --data @TMP/nothing --out @OUT --preset tiny", "manifest.jsonl: missing"),
    Case("corpus-no-labels", "train --data @C/no-labels --out @OUT --preset tiny", "corpus.json: 'labels' is missing"),
    Case("corpus-labels-text", "train --data @C/labels-text --out @OUT --preset tiny",
         "corpus.json:labels: must be a non-empty list"),
    Case("corpus-not-json", "train --data @C/not-json --out @OUT --preset tiny", "corpus.json: not valid JSON"),
    Case("corpus-json-list", "train --data @C/json-list --out @OUT --preset tiny", "expected a JSON object"),
    Case("protocol-bad-fold", "train --data @C/bad-fold --out @OUT --preset tiny", "protocol.json"),
    Case("manifest-bad-duration", "train --data @C/bad-duration --out @OUT --preset tiny",
         "manifest.jsonl:1: duration: must be a number >= 0"),
    Case("fold-unknown", T + "--fold bogus", "no fold 'bogus' in protocol"),
    Case("run-other-config", "train --data @DATA --out @RUN --preset tiny --quiet --epochs 2 --threads 1",
         "holds a run with a different config (epochs 1 -> 2)"),
    Case("run-complete", "train --data @DATA --out @RUN --preset tiny --quiet --epochs 1 --threads 1",
         "run is already complete"),
    Case("force-on-user-folder", T + "--force --out @AUDIO", "is not a copypaste-ser run folder"),
    # ---- train: bad audio in the corpus, named (also on a re-run)
    Case("corpus-nan-audio", "train --data @C/nan-audio --out @TMP/run --preset tiny --quiet --threads 1",
         "nan.wav: audio holds NaN or infinite samples", repeat=2, writes_nothing=False),
    Case("corpus-silent-audio", "train --data @C/silent-audio --out @TMP/run --preset tiny --quiet --threads 1",
         "silent.wav: no speech: the audio is silent or constant", writes_nothing=False),
    Case("corpus-one-sample", "train --data @C/short-audio --out @TMP/run --preset tiny --quiet --threads 1",
         "short.wav: audio is too short to analyse", writes_nothing=False),
    Case("cache-not-writable", "train --data @C/cache-file --out @TMP/run --preset tiny --quiet --threads 1",
         "cannot write the feature cache", writes_nothing=False),
    # ---- evaluate
    Case("snr-nan", "evaluate @RUN --snr nan", "--snr: must be a number >= -20 and <= 60, not nan"),
    Case("snr-inf", "evaluate @RUN --snr inf", "--snr: must be a number"),
    Case("snr-low", "evaluate @RUN --snr -200", "--snr: must be a number >= -20 and <= 60, not -200"),
    Case("snr-high", "evaluate @RUN --snr 100", "--snr: must be a number >= -20 and <= 60"),
    Case("split-bogus", "evaluate @RUN --split bogus", "--split: must be one of train, dev, test, not 'bogus'"),
    Case("probe-bogus", "evaluate @RUN --probe concatenate", "--probe: must be one of concat"),
    Case("eval-seed-negative", "evaluate @RUN --seed -1", "--seed: must be an integer >= 0"),
    Case("eval-no-noise-root", "evaluate @RUN --snr 10", "--snr needs --noise-root"),
    Case("eval-missing-run", "evaluate @TMP/none", "no such run directory or model file"),
    # ---- ensemble
    Case("ensemble-missing-grid", "ensemble @TMP/none --out @OUT", "none: no such grid folder"),
    Case("ensemble-split-bogus", "ensemble @TMP --out @OUT --split train", "--split: must be one of test, dev, not 'train'"),
    Case("ensemble-no-two-seeds", "ensemble @TMP --out @OUT", "no fold and cell has two finished seeds to ensemble"),
    # ---- predict
    Case("window-nan", "predict @RUN @WAV --window nan", "--window: must be a number >= 0.1"),
    Case("window-zero", "predict @RUN @WAV --window 0", "--window: must be a number >= 0.1"),
    Case("window-negative", "predict @RUN @WAV --window -4", "--window: must be a number >= 0.1"),
    Case("predict-nan", "predict @RUN @BAD/nan.wav", "nan.wav: audio holds NaN or infinite samples"),
    Case("predict-inf", "predict @RUN @BAD/inf.wav", "inf.wav: audio holds NaN or infinite samples"),
    Case("predict-empty", "predict @RUN @BAD/empty.wav", "empty.wav: audio file is empty"),
    Case("predict-one-sample", "predict @RUN @BAD/short.wav", "short.wav: audio is too short to analyse"),
    Case("predict-not-audio", "predict @RUN @BAD/text.wav", "text.wav: cannot read audio"),
    Case("predict-missing", "predict @RUN @TMP/none.wav", "none.wav: audio file is missing"),
    # ---- prepare
    Case("prepare-exists", "prepare synthetic --root @AUDIO --out @DATA", "pass --force to replace it"),
    Case("prepare-unknown", "prepare klingon --root @AUDIO --out @OUT", "unknown corpus 'klingon'"),
    Case("prepare-no-root", "prepare synthetic --root @TMP/none --out @OUT", "none"),
    Case("prepare-read-only", "prepare synthetic --root @AUDIO --out /sys/copypaste-ser-test", "/sys/copypaste-ser-test"),
    # ---- grid
    Case("grid-seeds-scalar", G, "g.yaml:seeds: must be a non-empty list", {"g.yaml": grid_yaml(seeds=0)}),
    Case("grid-seeds-negative", G, "g.yaml:seeds: item -1 must be an integer >= 0", {"g.yaml": grid_yaml(seeds=[0, -1])}),
    Case("grid-workers-zero", G, "g.yaml:workers: must be an integer >= 1", {"g.yaml": grid_yaml(workers=0)}),
    Case("grid-workers-negative", G, "g.yaml:workers: must be an integer >= 1", {"g.yaml": grid_yaml(workers=-1)}),
    Case("grid-training-data-typo", G, "g.yaml:training_data: item 'clean+nosie' must be one of clean, clean+noise",
         {"g.yaml": grid_yaml(training_data=["clean", "clean+nosie"])}),
    Case("grid-copypaste-typo", G, "g.yaml:copypaste: item 'ncp' must be one of", {"g.yaml": grid_yaml(copypaste=["none", "ncp"])}),
    Case("grid-snr-low", G, "g.yaml:snrs: item -200 must be a number >= -20", {"g.yaml": grid_yaml(snrs=[-200], noise_root="/x")}),
    Case("grid-preset", G, "g.yaml:preset: must be one of paper, cpu, small, tiny", {"g.yaml": grid_yaml(preset="huge")}),
    Case("grid-train-epochs", G, "g.yaml:train: epochs must be an integer >= 1", {"g.yaml": grid_yaml(train={"epochs": 0})}),
    Case("grid-train-cell-key", G, "g.yaml:train: unknown option 'seed'", {"g.yaml": grid_yaml(train={"seed": 1})}),
    Case("grid-folds-scalar", G, "g.yaml:folds: must be a non-empty list", {"g.yaml": grid_yaml(folds="default")}),
    Case("grid-repeated", G, "g.yaml:init: lists 'scratch' twice", {"g.yaml": grid_yaml(init=["scratch", "scratch"])}),
    Case("grid-data-number", G, "g.yaml:data: must be a text", {"g.yaml": grid_yaml(data=3)}),
    Case("grid-no-data", G, "g.yaml: missing 'data'", {"g.yaml": grid_yaml(data=None)}),
    Case("grid-unknown-key", G, "g.yaml: unknown grid option 'seed'", {"g.yaml": grid_yaml(seed=[0])}),
    Case("grid-fold-unknown", G, "grid: fold 'loso-x' matches none", {"g.yaml": grid_yaml(folds=["loso-x"])}),
    Case("grid-cli-workers", G + " --workers 0", "--workers: must be an integer >= 1", {"g.yaml": grid_yaml()}),
    Case("grid-cli-seed", G + " --seed -1", "--seed: must be an integer >= 0", {"g.yaml": grid_yaml()}),
    Case("grid-cli-slice", G + " --copypaste n-cpp", "grid: copypaste 'n-cpp' is not in the config", {"g.yaml": grid_yaml()}),
    Case("grid-epochs-changed", "grid @GRIDDIR/changed.yaml", "was trained with another config (epochs 1 -> 2)"),
    Case("grid-preset-changed", "grid @GRIDDIR/preset.yaml", "preset tiny -> cpu"),
]


# ---------------------------------------------------------------- the world
def _copy_corpus(data: Path, dest: Path, edit=None) -> Path:
    dest.mkdir(parents=True)
    for name in ("manifest.jsonl", "corpus.json", "protocol.json"):
        shutil.copy(data / name, dest / name)
    if edit:
        edit(dest)
    return dest


def _swap_first_train_audio(wav: Path):
    def edit(dest: Path) -> None:
        first = json.loads((dest / "protocol.json").read_text())["folds"][0]["train"][0]
        lines = [json.loads(x) for x in (dest / "manifest.jsonl").read_text().splitlines()]
        for u in lines:
            if u["id"] == first:
                u["audio"] = str(wav)
        (dest / "manifest.jsonl").write_text("".join(json.dumps(u) + "\n" for u in lines))
    return edit


def _json_edit(name: str, change):
    def edit(dest: Path) -> None:
        (dest / name).write_text(json.dumps(change(json.loads((dest / name).read_text()))))
    return edit


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A corpus with a trained run, a finished grid, bad audio files and damaged corpora."""
    from copypaste_ser.data.corpora.synthetic import generate
    from copypaste_ser.data.prepare import prepare_to_dir
    from copypaste_ser.experiments.grid import GridConfig, run_grid
    from copypaste_ser.training.config import make_config
    from copypaste_ser.training.loop import train

    root = tmp_path_factory.mktemp("world")
    generate(root / "audio", speakers=4, utterances_per_emotion=2, seed=3)
    data = root / "data"
    prepare_to_dir("synthetic", root / "audio", data)
    train(make_config("tiny", data=str(data), epochs=1, threads=1), root / "run", progress=False)
    bad = root / "bad"
    bad.mkdir()
    noise = 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    sf.write(bad / "nan.wav", np.where(np.arange(16000) == 500, np.nan, noise), 16000, subtype="FLOAT")
    sf.write(bad / "inf.wav", np.where(np.arange(16000) == 500, np.inf, noise), 16000, subtype="FLOAT")
    sf.write(bad / "empty.wav", np.zeros(0, np.float32), 16000)
    write_audio(bad / "short.wav", noise[:1])
    write_audio(bad / "silent.wav", np.zeros(16000, np.float32))
    (bad / "text.wav").write_text("not audio")
    c = root / "corpora"
    _copy_corpus(data, c / "no-labels", _json_edit("corpus.json", lambda m: {k: v for k, v in m.items() if k != "labels"}))
    _copy_corpus(data, c / "labels-text", _json_edit("corpus.json", lambda m: {**m, "labels": "neutral"}))
    _copy_corpus(data, c / "not-json", lambda d: (d / "corpus.json").write_text("{name: x"))
    _copy_corpus(data, c / "json-list", lambda d: (d / "corpus.json").write_text("[1, 2]"))
    _copy_corpus(data, c / "bad-fold", _json_edit("protocol.json", lambda p: {**p, "folds": [{"name": "x"}]}))
    _copy_corpus(data, c / "bad-duration", lambda d: (d / "manifest.jsonl").write_text(
        "".join(x.replace('"duration": ', '"duration": "long", "_": ', 1) if i == 0 else x
                for i, x in enumerate((d / "manifest.jsonl").read_text().splitlines(keepends=True)))))
    for name, wav in (("nan-audio", "nan.wav"), ("silent-audio", "silent.wav"), ("short-audio", "short.wav")):
        _copy_corpus(data, c / name, _swap_first_train_audio(bad / wav))
    _copy_corpus(data, c / "cache-file", lambda d: (d / "features").write_text("a file, not a folder"))
    grids = root / "grids"
    grids.mkdir()
    done = yaml.safe_load(grid_yaml().replace("@DATA", str(data)).replace("@OUT", str(root / "grid-out")))
    (grids / "done.yaml").write_text(yaml.safe_dump(done))
    (grids / "changed.yaml").write_text(yaml.safe_dump({**done, "train": {"epochs": 2, "threads": 1}}))
    (grids / "preset.yaml").write_text(yaml.safe_dump({**done, "preset": "cpu"}))
    run_grid(GridConfig.load(grids / "done.yaml"), progress=False)
    return {"ROOT": root, "DATA": data, "RUN": root / "run", "AUDIO": root / "audio", "BAD": bad, "C": c,
            "GRIDDIR": grids, "WAV": next((root / "audio").glob("*.wav"))}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root``: (size, mtime_ns); run locks left out (a refused
    train may take a run's lock, which rewrites its pid, before it compares configs)."""
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.name != ".copypaste-ser.lock"}


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``copypaste-ser ARGV`` in this process: (exit status, stdout + stderr)."""
    from copypaste_ser.cli.main import main

    out = io.StringIO()
    old_argv, old_term = sys.argv, signal.getsignal(signal.SIGTERM)
    sys.argv = ["copypaste-ser", *argv]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = old_argv
        signal.signal(signal.SIGTERM, old_term)
    return code, out.getvalue()


def _expand(text: str, paths: dict[str, Path]) -> str:
    for name in sorted(paths, key=len, reverse=True):  # @DATA before @D...
        text = text.replace(f"@{name}", str(paths[name]))
    return text


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case: Case, world: dict[str, Path], tmp_path: Path):
    if "/sys/" in case.argv and Path("/sys").is_dir() and _writable("/sys"):
        pytest.skip("/sys is writable here")
    paths = {**world, "TMP": tmp_path, "OUT": tmp_path / "out"}
    for name, text in case.files.items():
        (tmp_path / name).write_text(_expand(text, paths))
    before = snapshot(world["ROOT"])
    for _ in range(case.repeat):
        code, output = run_cli(_expand(case.argv, paths).split())
        lines = output.strip().splitlines()
        assert code == 2, output
        assert len(lines) == 1 and lines[0].startswith("error: "), output
        assert case.expect in lines[0], output
    assert snapshot(world["ROOT"]) == before
    if case.writes_nothing:
        assert not (tmp_path / "out").exists()


def _writable(folder: str) -> bool:
    try:
        Path(folder, "copypaste-ser-probe").mkdir()
    except OSError:
        return False
    Path(folder, "copypaste-ser-probe").rmdir()
    return True


def test_there_are_at_least_60_cases():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


def test_predict_says_no_speech_for_silence_and_dc(world: dict[str, Path], tmp_path: Path):
    write_audio(tmp_path / "dc.wav", np.full(16000, 0.25, np.float32))
    quiet_then_loud = np.concatenate([np.zeros(16000, np.float32), sf.read(world["WAV"], dtype="float32")[0]])
    write_audio(tmp_path / "mixed.wav", quiet_then_loud)
    code, output = run_cli(["predict", str(world["RUN"]), str(world["BAD"] / "silent.wav"), str(tmp_path / "dc.wav")])
    assert code == 0 and output.splitlines() == [f"{world['BAD'] / 'silent.wav'}: no speech",
                                                   f"{tmp_path / 'dc.wav'}: no speech"], output
    code, output = run_cli(["predict", str(world["RUN"]), str(tmp_path / "mixed.wav"), "--window", "0.5"])
    assert code == 0 and "[0.0-0.5 s]: no speech" in output and any(
        "no speech" not in line for line in output.splitlines()), output


def test_grid_force_trains_a_changed_run_again(world: dict[str, Path], tmp_path: Path):
    shutil.copytree(world["ROOT"] / "grid-out", tmp_path / "grid-out")
    raw = yaml.safe_load((world["GRIDDIR"] / "changed.yaml").read_text())
    (tmp_path / "g.yaml").write_text(yaml.safe_dump({**raw, "out": str(tmp_path / "grid-out")}))
    code, output = run_cli(["grid", str(tmp_path / "g.yaml"), "--force"])
    assert code == 0, output
    run = next((tmp_path / "grid-out").rglob("seed-0"))
    assert yaml.safe_load((run / "config.yaml").read_text())["epochs"] == 2
    assert len((run / "history.jsonl").read_text().splitlines()) == 2
    code, output = run_cli(["grid", str(tmp_path / "g.yaml")])  # now the grid's own: reused
    assert code == 0 and "1 already done" in output, output
