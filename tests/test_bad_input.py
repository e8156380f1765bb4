"""Bad input to every command: one line ``error: ...``, exit status 2, no traceback, and
nothing the user had (corpus, cache, runs, grid) touched; checks that write nothing at all
also leave no new ``--out`` behind.

Each case is ``(id, argv, expected text, flags)``. In argv, the expected text and the text
files a case writes (bytes are written as they are), ``@NAME`` stands for a path of the
module's world (see :func:`world`) or the test's own scratch folder (``@TMP``; ``@OUT`` there
must not appear). The commands run in-process through ``cli.main`` (as ``copypaste-ser``
does), which is what keeps 300+ cases fast.
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
    files: dict = field(default_factory=dict)   # name in @TMP -> text (with @NAME), or bytes as they are
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
    Case("width-with-encoder", T + "--init resemblyzer-attention --width 8",
         "width: sets the ResNet's channels and does not apply to init 'resemblyzer-attention'"),
    Case("width-with-whisper", T + "--init whisper-attention --width 8",
         "width: sets the ResNet's channels and does not apply to init 'whisper-attention'"),
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


# ---------------------------------------------------------------- issue 33: every command
# Nothing a user owns is overwritten (--force replaces only the tool's own files) and no
# name read from a file becomes a path. Helpers for the cases below:
SPEAKERS, EMOTIONS = ("spk00", "spk01", "spk02", "spk03"), ("neutral", "angry", "happy", "sad")


def csv_list(header: str = "path,label,speaker", sep: str = ",", row=None, extra: tuple = ()) -> str:
    """A CSV list of the world's 32 synthetic files (``row(speaker, emotion, k)`` -> its fields)."""
    lines = [header.replace(",", sep)]
    for s in SPEAKERS:
        for e in EMOTIONS:
            for k in range(2):
                lines.append(sep.join(row(s, e, k) if row else (f"@AUDIO/{s}_{e}_{k:03d}.wav", e, s)))
    return "\n".join([*lines, *extra]) + "\n"


def _wav(s: str, e: str, k: int) -> str:
    return f"@AUDIO/{s}_{e}_{k:03d}.wav"


def flac_bytes(keep: int | None = None) -> bytes:
    """A valid 1 s FLAC file, cut to its first ``keep`` bytes (a download or copy that stopped)."""
    buf = io.BytesIO()
    sf.write(buf, 0.1 * np.random.default_rng(0).standard_normal(16000), 16000, format="FLAC")
    return buf.getvalue()[:keep]


def csv_case(case_id: str, options: str, expect: str, text: str | bytes) -> Case:
    return Case(case_id, f"prepare folder --csv @TMP/list.csv --out @OUT {options}".strip(), expect, {"list.csv": text})


def results_case(case_id: str, rows: str, expect: str,
                 header: str = "fold,init,training_data,copypaste,seed,test,weighted_f1") -> Case:
    return Case(case_id, "report @TMP/r.csv --out @OUT", expect, {"r.csv": f"{header}\n{rows}"})


def rule_case(case_id: str, text: str | bytes, expect: str) -> Case:
    return Case(case_id, "report @ROOT/grid-out --out @OUT --rule @TMP/rule.yaml", expect, {"rule.yaml": text})


SPK = "pretrain-speaker --data @DATA --out @OUT --preset tiny --quiet "
ONE_SPEAKER = csv_list(row=lambda s, e, k: (_wav(s, e, k), e, "one"))


def split_row(s: str, e: str, k: int) -> tuple:  # a split column: spk00 tested, spk01 dev, the rest train
    return _wav(s, e, k), e, s, {"spk00": "test", "spk01": "dev"}.get(s, "train")


GRID2 = {"b.yaml": grid_yaml(out="@ROOT/grid-out")}  # a second candidate over the finished runs
CASES += [
    # ---- export: the model, then where the ONNX file may go
    Case("export-missing-run", "export @TMP/none --onnx @TMP/m.onnx", "none: no such run directory or model file"),
    Case("export-unfinished-run", "export @TMP/run --onnx @TMP/m.onnx", "run has no model.pt yet",
         {"run/config.yaml": "epochs: 1\n"}),
    Case("export-text-model", "export @TMP/model.pt --onnx @TMP/m.onnx", "model.pt: not a readable checkpoint",
         {"model.pt": "text"}),
    Case("export-onto-user-file", "export @RUN --onnx @TMP/m.onnx", "m.onnx already exists; pass --force", {"m.onnx": "mine"}),
    Case("export-force-onto-user-file", "export @RUN --onnx @TMP/m.onnx --force", "is not an ONNX export of copypaste-ser",
         {"m.onnx": "mine"}),
    Case("export-onto-folder", "export @RUN --onnx @TMP/d.onnx --force", "d.onnx: is a folder; --onnx names the file",
         {"d.onnx/mine.txt": "mine"}),
    Case("export-folder-without-suffix", "export @RUN --onnx @TMP", "the file name must end in .onnx"),
    Case("export-not-onnx-suffix", "export @RUN --onnx @TMP/m.pt", "m.pt: the file name must end in .onnx"),
    Case("export-parent-is-file", "export @RUN --onnx @TMP/f/m.onnx", "f: is a file, not a folder; choose another --onnx",
         {"f": "x"}),
    # ---- report: results files (each line checked), the output folder, the rule, the paper
    Case("report-missing-csv", "report @TMP/none.csv --out @OUT", "none.csv: no such file"),
    Case("report-folder-without-results", "report @TMP --out @OUT", "results.csv: no such file"),
    Case("report-second-missing", "report @ROOT/grid-out @TMP/none.csv --out @OUT", "none.csv: no such file"),
    results_case("report-score-text", "default,scratch,clean,none,0,clean,high\n",
                 "r.csv:2: weighted_f1 is 'high', not a score"),
    results_case("report-score-above-one", "default,scratch,clean,none,0,clean,1.5\n",
                 "weighted_f1 is '1.5', not a score between 0 and 1"),
    results_case("report-score-nan", "default,scratch,clean,none,0,clean,nan\n", "weighted_f1 is 'nan'"),
    results_case("report-uar-text", "default,scratch,clean,none,0,clean,0.5,good\n", "uar is 'good'",
                 header="fold,init,training_data,copypaste,seed,test,weighted_f1,uar"),
    results_case("report-seconds-text", "default,scratch,clean,none,0,clean,0.5,long\n",
                 "train_seconds is 'long', not a number",
                 header="fold,init,training_data,copypaste,seed,test,weighted_f1,train_seconds"),
    results_case("report-no-score-column", "default,scratch,clean,none,0,clean\n",
                 "not a grid results.csv (no column 'weighted_f1')",
                 header="fold,init,training_data,copypaste,seed,test"),
    results_case("report-empty-csv", "", "not a grid results.csv (no column", header=""),
    results_case("report-header-only", "", "r.csv: holds no results (only its header)"),
    results_case("report-extra-value", "default,scratch,clean,none,0,clean,0.5,9\n", "r.csv:2: more values than the header"),
    results_case("report-fold-climbs-out", "../../x,scratch,clean,none,0,clean,0.5\n", "r.csv:2: fold '../../x' holds '/'"),
    results_case("report-fold-dotdot", "..,scratch,clean,none,0,clean,0.5\n", "r.csv:2: fold '..' is '..'"),
    results_case("report-init-slash", "default,../x,clean,none,0,clean,0.5\n", "r.csv:2: init '../x' holds '/'"),
    results_case("report-seed-empty", "default,scratch,clean,none,,clean,0.5\n", "r.csv:2: seed '' is empty"),
    Case("report-csv-utf16", "report @TMP/r.csv --out @OUT", "r.csv: is UTF-16 text; save it as UTF-8",
         {"r.csv": "fold,init\n".encode("utf-16")}),
    Case("report-csv-latin1", "report @TMP/r.csv --out @OUT", "r.csv: is not UTF-8 (byte 0xe9",
         {"r.csv": "fold,init,training_data,copypaste,seed,test,weighted_f1\nd\xe9faut,scratch,clean,none,0,clean,0.5\n"
          .encode("latin-1")}),
    Case("report-csv-binary", "report @WAV --out @OUT", "holds NUL bytes: it looks like binary data"),
    Case("report-out-is-file", "report @ROOT/grid-out --out @WAV", "is a file, not a folder; choose another --out"),
    Case("report-out-user-report", "report @ROOT/grid-out --out @TMP/o", "report.md: exists; pass --force",
         {"o/report.md": "mine"}, writes_nothing=False),
    Case("report-force-user-report", "report @ROOT/grid-out --out @TMP/o --force",
         "report.md: exists and was not written by copypaste-ser",
         {"o/report.md": "mine"}, writes_nothing=False),
    Case("report-force-user-results", "report @ROOT/grid-out --out @TMP/o --force", "results.csv: exists and was not written",
         {"o/results.csv": "mine"}, writes_nothing=False),
    Case("report-out-is-its-grid", "report @ROOT/grid-out --out @ROOT/grid-out", "grid-out/results.csv: exists; pass --force"),
    Case("report-rule-missing", "report @ROOT/grid-out --out @OUT --rule @TMP/none.yaml",
         "--rule: @TMP/none.yaml: no such file"),
    Case("report-rule-folder", "report @ROOT/grid-out --out @OUT --rule @TMP", "is a folder, not a file"),
    Case("report-rule-binary", "report @ROOT/grid-out --out @OUT --rule @WAV", "--rule: @WAV: holds NUL bytes"),
    rule_case("report-rule-not-yaml", "form: [1\n", "rule.yaml: not valid YAML"),
    rule_case("report-rule-list", "- 1\n- 2\n", "not a reporting rule (it needs the keys form, statistics, selection)"),
    rule_case("report-rule-lacks-keys", "form: {}\n", "not a reporting rule"),
    rule_case("report-rule-utf16", "form: {}\n".encode("utf-16"), "rule.yaml: is UTF-16 text"),
    rule_case("report-rule-key-twice", "form: {}\nform: {}\nstatistics: {}\nselection: {}\n",
              "rule.yaml:2: key 'form' is given twice"),
    rule_case("report-rule-section-scalar", "form: {}\nstatistics: 1\nselection: {}\n",
              "rule.yaml:statistics: must be a mapping"),
    rule_case("report-rule-seeds-scalar", "form: {seeds: 3}\nstatistics: {}\nselection: {}\n",
              "rule.yaml:form.seeds: must be a list"),
    Case("report-paper-unknown", "report @ROOT/grid-out --out @OUT --paper klingon",
         "--paper 'klingon': choose one of crema-d"),
    # ---- fuse: every output file before the probes are fitted
    Case("fuse-missing-config", "fuse @TMP/none.yaml --out @OUT", "none.yaml: no such file"),
    Case("fuse-not-a-grid", "fuse @TMP/g.yaml --out @OUT", "g.yaml: not a grid config", {"g.yaml": "- 1\n"}),
    Case("fuse-probe-bogus", "fuse @GRIDDIR/done.yaml --out @OUT --probe bogus",
         "--probe: must be one of rzstates-lr, mfcc-lr"),
    Case("fuse-weight-big", "fuse @GRIDDIR/done.yaml --out @OUT --weight 1.5", "--weight: 1.5 is not in [0, 1]"),
    Case("fuse-weight-nan", "fuse @GRIDDIR/done.yaml --out @OUT --weight nan", "--weight: nan is not in [0, 1]"),
    Case("fuse-weight-negative", "fuse @GRIDDIR/done.yaml --out @OUT --weight -0.5", "--weight: -0.5 is not in [0, 1]"),
    Case("fuse-no-runs", "fuse @TMP/g.yaml --out @OUT", "no finished run to fuse", {"g.yaml": grid_yaml(out="@TMP/none")}),
    Case("fuse-out-is-file", "fuse @GRIDDIR/done.yaml --out @WAV", "is a file, not a folder; choose another --out"),
    Case("fuse-user-predictions", "fuse @GRIDDIR/done.yaml --out @TMP", "predictions.json: exists; pass --force",
         {"predictions.json": "mine"}),
    Case("fuse-force-user-weights", "fuse @GRIDDIR/done.yaml --out @TMP --force", "weights.csv: exists and was not written",
         {"weights.csv": "mine"}),
    # ---- ensemble
    Case("ensemble-grid-is-file", "ensemble @WAV --out @OUT", "no such grid folder"),
    Case("ensemble-one-seed-grid", "ensemble @ROOT/grid-out --out @OUT", "no fold and cell has two finished seeds"),
    Case("ensemble-seed-unknown", "ensemble @ROOT/grid-seeds --out @OUT --seed 7", "--seed 7: no finished run of seed '7'"),
    Case("ensemble-seed-text", "ensemble @ROOT/grid-seeds --out @OUT --seed abc --seed 0", "--seed abc: no finished run"),
    Case("ensemble-seed-twice", "ensemble @ROOT/grid-seeds --out @OUT --seed 0 --seed 0", "--seed: seed 0 is given twice"),
    Case("ensemble-one-seed-chosen", "ensemble @ROOT/grid-seeds --out @OUT --seed 1", "an ensemble needs two or more seeds"),
    Case("ensemble-out-is-file", "ensemble @ROOT/grid-seeds --out @WAV", "is a file, not a folder"),
    Case("ensemble-user-predictions", "ensemble @ROOT/grid-seeds --out @TMP", "predictions.json: exists; pass --force",
         {"predictions.json": "mine"}),
    Case("ensemble-force-user-results", "ensemble @ROOT/grid-seeds --out @TMP --force",
         "results.csv: exists and was not written",
         {"results.csv": "mine"}),
    # ---- choose
    Case("choose-missing-config", "choose @GRIDDIR/done.yaml @TMP/none.yaml --out @OUT", "none.yaml: no such file"),
    Case("choose-not-a-grid", "choose @TMP/g.yaml @GRIDDIR/done.yaml --out @OUT", "g.yaml: not a grid config",
         {"g.yaml": "- 1\n"}),
    Case("choose-not-yaml", "choose @TMP/g.yaml @GRIDDIR/done.yaml --out @OUT", "g.yaml: not valid YAML",
         {"g.yaml": "a: [1\n"}),
    Case("choose-one-candidate", "choose @GRIDDIR/done.yaml --out @OUT", "give two or more dev grid configs"),
    Case("choose-same-name", "choose @GRIDDIR/done.yaml @GRIDDIR/done.yaml --out @OUT", "two candidates are named done.yaml"),
    Case("choose-other-corpus", "choose @GRIDDIR/done.yaml @TMP/b.yaml --out @OUT", "the candidates use different corpora",
         {"b.yaml": grid_yaml(data="@C/nan-audio", out="@ROOT/grid-out")}),
    Case("choose-unfinished", "choose @GRIDDIR/done.yaml @TMP/b.yaml --out @OUT", "has no run that every candidate finished",
         {"b.yaml": grid_yaml(out="@TMP/none")}),
    Case("choose-out-is-file", "choose @GRIDDIR/done.yaml @TMP/b.yaml --out @WAV", "is a file, not a folder", GRID2),
    Case("choose-user-choice", "choose @GRIDDIR/done.yaml @TMP/b.yaml --out @TMP/o", "choice.json: exists; pass --force",
         {**GRID2, "o/choice.json": "mine"}),
    # ---- baseline
    Case("baseline-fold-matches-none", "baseline @DATA --out @OUT --fold loso-zz*",
         "--fold 'loso-zz*' matches none of the folds"),
    Case("baseline-snr-without-noise", "baseline @DATA --out @OUT --snr 5", "--snr: noisy tests need --noise-root"),
    Case("baseline-snr-nan", "baseline @DATA --out @OUT --snr nan --noise-root @NOISE",
         "--snr: must be a number >= -20 and <= 60, not nan"),
    Case("baseline-snr-low", "baseline @DATA --out @OUT --snr 5 --snr -100 --noise-root @NOISE",
         "--snr: must be a number >= -20"),
    Case("baseline-noise-missing", "baseline @DATA --out @OUT --snr 5 --noise-root @TMP/none", "none: MUSAN folder is missing"),
    Case("baseline-noise-no-pools", "baseline @DATA --out @OUT --snr 5 --noise-root @TMP",
         "noise: MUSAN noise folder is missing"),
    Case("baseline-missing-corpus", "baseline @TMP/none --out @OUT", "none/manifest.jsonl: missing"),
    Case("baseline-damaged-corpus", "baseline @C/not-json --out @OUT", "corpus.json: not valid JSON"),
    Case("baseline-out-is-file", "baseline @DATA --out @WAV", "is a file, not a folder; choose another --out"),
    Case("baseline-force-user-results", "baseline @DATA --out @TMP --force", "results.csv: exists and was not written",
         {"results.csv": "mine"}),
    # ---- against-baselines: results files, the test condition, where the table goes
    Case("against-baselines-missing-csv", "against-baselines @TMP/none.csv", "none.csv: no such results file"),
    Case("against-baselines-not-results", "against-baselines @TMP/r.csv", "r.csv: not a grid results.csv (no column",
         {"r.csv": "a,b\n1,2\n"}),
    Case("against-baselines-unknown-test", "against-baselines @ROOT/grid-out/results.csv --test 5dB",
         "--test '5dB': the results hold no such test; choose one of"),
    Case("against-baselines-no-baseline", "against-baselines @TMP/r.csv", "no model and baseline share two folds",
         {"r.csv": "fold,init,training_data,copypaste,seed,test,weighted_f1\nf1,m,clean,none,0,clean,0.5\n"}),
    Case("against-baselines-onto-user-file", "against-baselines @ROOT/grid-out/results.csv --out @TMP/t.md",
         "t.md: exists; pass --force", {"t.md": "mine"}),
    # ---- score: a finished model on a corpus's test folds
    Case("score-missing-model", "score @DATA --out @OUT --model @TMP/none", "none: no such run directory or model file"),
    Case("score-text-model", "score @DATA --out @OUT --model @TMP/model.pt", "model.pt: not a readable checkpoint",
         {"model.pt": "junk"}),
    Case("score-text-onnx", "score @DATA --out @OUT --model @TMP/m.onnx", "m.onnx: not a readable ONNX model",
         {"m.onnx": "junk"}),
    Case("score-labels-the-model-lacks", "score @C/extra-label --out @OUT --model @RUN", "the model has no class fear"),
    Case("score-fold-matches-none", "score @DATA --out @OUT --model @RUN --fold zz*", "--fold 'zz*' matches none of the folds"),
    Case("score-missing-corpus", "score @TMP/none --out @OUT --model @RUN", "none/manifest.jsonl: missing"),
    Case("score-damaged-corpus", "score @C/bad-fold --out @OUT --model @RUN", "protocol.json: not a valid fold"),
    Case("score-out-is-file", "score @DATA --out @WAV --model @RUN", "is a file, not a folder"),
    Case("score-name-slash", "score @DATA --out @OUT --model @RUN --name a/b", "--name 'a/b' holds '/'"),
    Case("score-name-dotdot", "score @DATA --out @OUT --model @RUN --name ..", "--name '..' is '..'"),
    Case("score-user-results", "score @DATA --out @TMP --model @RUN", "results.csv: exists; pass --force",
         {"results.csv": "mine"}),
    Case("score-force-user-results", "score @DATA --out @TMP --model @RUN --force", "results.csv: exists and was not written",
         {"results.csv": "mine"}),
    # ---- combine
    Case("combine-one-corpus", "combine @DATA --out @OUT", "combine: give at least two prepared corpora"),
    Case("combine-same-twice", "combine @DATA @DATA --out @OUT", "corpus 'data' is given twice"),
    Case("combine-same-by-two-paths", "combine @DATA @C/../data --out @OUT", "corpus 'data' is given twice"),
    Case("combine-missing-corpus", "combine @DATA @TMP/none --out @OUT", "none/manifest.jsonl: missing"),
    Case("combine-damaged-corpus", "combine @DATA @C/bad-duration --out @OUT", "manifest.jsonl:1: duration: must be a number"),
    Case("combine-corpus-without-labels", "combine @DATA @C/no-labels --out @OUT", "corpus.json: 'labels' is missing"),
    Case("combine-label-a-corpus-lacks", "combine @DATA @C/extra-label --out @OUT --labels fear,sad",
         "--labels: corpus 'data' has no fear"),
    Case("combine-one-label", "combine @DATA @C/nan-audio --out @OUT --labels sad",
         "--labels: sad given; give at least two labels"),
    Case("combine-no-label", "combine @DATA @C/nan-audio --out @OUT --labels ,", "--labels: no label given"),
    Case("combine-label-twice", "combine @DATA @C/nan-audio --out @OUT --labels sad,sad,angry",
         "--labels: 'sad' is given twice"),
    Case("combine-seed-negative", "combine @DATA @C/nan-audio --out @OUT --seed -1", "--seed: must be an integer >= 0"),
    Case("combine-out-prepared", "combine @DATA @C/nan-audio --out @DATA",
         "data: already holds a prepared corpus; pass --force"),
    Case("combine-out-is-file", "combine @DATA @C/nan-audio --out @WAV", "is a file, not a folder; choose another --out"),
    Case("combine-force-user-file", "combine @DATA @C/nan-audio --out @TMP --force", "corpus.json: exists and was not written",
         {"corpus.json": "mine"}),
    # ---- demo, pretrain-speaker, download (nothing fetched: each fails before a download)
    Case("demo-epochs-zero", "demo --out @OUT --epochs 0", "--epochs: must be an integer >= 1"),
    Case("demo-epochs-negative", "demo --out @OUT --epochs -1", "--epochs: must be an integer >= 1"),
    Case("demo-epochs-huge", "demo --out @OUT --epochs 1000000", "--epochs: must be an integer >= 1 and <= 100000"),
    Case("demo-out-is-file", "demo --out @WAV --epochs 1", "is a file, not a folder; choose another --out"),
    Case("demo-out-user-folder", "demo --out @AUDIO --epochs 1", "audio: is not a copypaste-ser run folder"),
    Case("speaker-missing-data", SPK + "--data @TMP/none", "none/manifest.jsonl: missing"),
    Case("speaker-preset-unknown", SPK + "--preset huge", "--preset: must be one of paper, cpu, small, tiny"),
    Case("speaker-width-zero", SPK + "--width 0", "--width: must be an integer >= 1"),
    Case("speaker-epochs-zero", SPK + "--epochs 0", "--epochs: must be an integer >= 1"),
    Case("speaker-lr-nan", SPK + "--lr nan", "--lr: must be a number > 0 and <= 10, not nan"),
    Case("speaker-chunk-zero", SPK + "--chunk-seconds 0", "--chunk-seconds: must be a number >= 0.1"),
    Case("speaker-threads-negative", SPK + "--threads -1", "--threads: must be an integer >= 0"),
    Case("speaker-seed-negative", SPK + "--seed -1", "--seed: must be an integer >= 0"),
    Case("speaker-batch-one", SPK + "--batch-size 1", "--batch-size: must be an integer >= 2"),
    Case("download-unknown-corpus", "download klingon --out @OUT", "unknown corpus 'klingon' to fetch"),
    Case("download-licensed-corpus", "download crema-d --out @OUT", "crema-d: cannot be downloaded automatically"),
    Case("download-out-is-file", "download emodb --out @WAV", "is a file, not a folder; choose another --out"),
    # ---- prepare folder: the CSV's encoding, columns, rows; labels; names that become paths; folds
    csv_case("csv-utf16", "", "list.csv: is UTF-16 text; save it as UTF-8", csv_list().encode("utf-16")),
    csv_case("csv-utf32", "", "list.csv: is UTF-32 text", csv_list().encode("utf-32")),
    csv_case("csv-latin1", "", "list.csv: is not UTF-8 (byte 0xe9",
             csv_list(extra=("@AUDIO/spk00_sad_000.wav,sad,Jos\xe9",)).encode("latin-1")),
    csv_case("csv-nul-bytes", "", "list.csv: holds NUL bytes", b"path,label,speaker\n\x00\x00\n"),
    Case("csv-is-audio", "prepare folder --csv @WAV --out @OUT", "holds NUL bytes: it looks like binary data"),
    csv_case("csv-semicolons", "", "list.csv: the header 'path;label;speaker' is separated by semicolons", csv_list(sep=";")),
    csv_case("csv-tabs", "", "is separated by tabs, not by commas", csv_list(sep="\t")),
    csv_case("csv-no-path-column", "", "list.csv: missing column 'path'", csv_list(header="file,label,speaker")),
    csv_case("csv-no-label-column", "", "list.csv: missing column 'label'", csv_list(header="path,emotion,speaker")),
    csv_case("csv-no-speaker-column", "", "list.csv: missing column 'speaker'", csv_list(header="path,label,spk")),
    csv_case("csv-empty", "", "list.csv: missing column 'path'", ""),
    csv_case("csv-header-only", "", "list.csv: the CSV lists no utterances", "\ufeffpath,label,speaker\n"),
    Case("csv-missing", "prepare folder --csv @TMP/none.csv --out @OUT", "none.csv: CSV file does not exist"),
    Case("csv-is-folder", "prepare folder --csv @TMP --out @OUT", "--csv: @TMP: is a folder, not a CSV file"),
    csv_case("csv-audio-missing", "", "none.wav: audio listed in @TMP/list.csv:34 is missing",
             csv_list(extra=("@TMP/none.wav,sad,spk00",))),
    csv_case("csv-relative-audio-missing", "", "@TMP/none.wav: audio listed in", csv_list(extra=("none.wav,sad,spk00",))),
    csv_case("csv-audio-not-audio", "", "text.wav: cannot read audio", csv_list(extra=("@BAD/text.wav,sad,spk00",))),
    csv_case("csv-same-file-twice", "", "spk00_sad_000.wav: listed twice in",
             csv_list(extra=("@AUDIO/spk00_sad_000.wav,sad,spk00",))),
    csv_case("csv-same-file-two-labels", "", "spk00_sad_000.wav: listed twice in",
             csv_list(extra=("@AUDIO/spk00_sad_000.wav,angry,spk00",))),
    csv_case("csv-empty-path", "", "list.csv:34: empty path", csv_list(extra=(",sad,spk00",))),
    csv_case("csv-empty-speaker", "", "list.csv:34: empty speaker", csv_list(extra=("@AUDIO/spk00_sad_001.wav,sad,",))),
    csv_case("csv-unknown-label", "", "list.csv:34: unknown label 'grumpy'",
             csv_list(extra=("@AUDIO/spk00_sad_001.wav,grumpy,spk00",))),
    csv_case("csv-unknown-split", "", "list.csv:2: unknown split 'tset'",
             csv_list("path,label,speaker,split", row=lambda s, e, k: (_wav(s, e, k), e, s, "tset"))),
    csv_case("csv-split-and-folds", "--folds loso", "has split column(s) and --folds loso was given",
             csv_list("path,label,speaker,split", row=split_row)),
    csv_case("label-map-twice", "--label-map a=angry,a=sad", "--label-map: 'a' is mapped twice ('angry' and 'sad')",
             csv_list()),
    csv_case("label-map-not-pair", "--label-map angry", "--label-map: 'angry' is not RAW=NAME", csv_list()),
    csv_case("label-map-unknown-target", "--label-map a=grumpy", "--label-map: a=grumpy: 'grumpy' is not a known label",
             csv_list(row=lambda s, e, k: (_wav(s, e, k), "a" if e == "angry" else e, s))),
    csv_case("label-map-unused-typo", "--label-map x=angy", "--label-map: x=angy: 'angy' is not a known label", csv_list()),
    csv_case("speaker-with-slash", "--folds loso", "speaker of utterance 'spk00_neutral_000' 'a/spk00' holds '/'",
             csv_list(row=lambda s, e, k: (_wav(s, e, k), e, "a/" + s))),
    csv_case("speaker-climbs-out", "", "'../spk00' holds '/'", csv_list(row=lambda s, e, k: (_wav(s, e, k), e, "../" + s))),
    csv_case("speaker-dotdot", "--folds loso", "speaker of utterance 'spk00_neutral_000' '..' is '..'",
             csv_list(row=lambda s, e, k: (_wav(s, e, k), e, ".." if s == "spk00" else s))),
    csv_case("fold-group-climbs-out", "", "fold name 'fold-../spk00' holds '/'",
             csv_list("path,label,speaker,fold", row=lambda s, e, k: (_wav(s, e, k), e, s, "../" + s))),
    csv_case("fold-column-slash", "", "fold name 'a/b' holds '/'", csv_list("path,label,speaker,fold-a/b", row=split_row)),
    csv_case("fold-column-dotdot", "", "fold name '..' is '..'", csv_list("path,label,speaker,fold-..", row=split_row)),
    csv_case("folds-2", "--folds 2", "--folds='2': use loso, a number of folds K >= 3", csv_list()),
    csv_case("folds-abc", "--folds abc", "--folds='abc': use loso", csv_list()),
    csv_case("folds-zero", "--folds 0", "--folds='0'", csv_list()),
    csv_case("folds-negative", "--folds -3", "--folds='-3'", csv_list()),
    csv_case("folds-more-than-speakers", "--folds 9", "4 speakers cannot make 9 speaker-independent folds", csv_list()),
    csv_case("folds-loso-one-speaker", "--folds loso", "1 speakers; leave-one-speaker-out needs at least 3", ONE_SPEAKER),
    csv_case("folds-default-one-speaker", "", "only 1 speakers found; a speaker-independent train/dev/test split", ONE_SPEAKER),
    Case("folder-force-user-manifest", "prepare folder --csv @TMP/list.csv --out @TMP/o --force",
         "manifest.jsonl: exists and was not written by copypaste-ser", {"list.csv": csv_list(), "o/manifest.jsonl": "mine"}),
    csv_case("folder-classes-option", "--classes paper4", "corpus 'folder' has no option 'classes'", csv_list()),
    Case("folder-no-csv-no-root", "prepare folder --out @OUT", "corpus 'folder' needs --csv LIST.csv or --root FOLDER"),
    Case("folder-root-is-file", "prepare folder --root @WAV --out @OUT", "not a folder"),
    Case("folder-tree-unknown-label", "prepare folder --root @TMP/tree --out @OUT",
         "tree/grumpy: folder name is not a known label",
         {"tree/grumpy/a.wav": "x"}),
    Case("prepare-synthetic-folds-abc", "prepare synthetic --root @TMP/a --out @OUT --folds abc", "--folds='abc'"),
    # ---- train: options that do not apply to the chosen model, files it reads (before OUT is made)
    Case("whisper-layer-for-scratch", T + "--whisper-layer 2", "whisper_layer: applies to init 'whisper-attention' only"),
    Case("whisper-model-for-scratch", T + "--whisper-model tiny", "whisper_model: applies to init 'whisper-attention' only"),
    Case("head-pooling-for-scratch", T + "--head-pooling meanstd", "head_pooling: applies to init 'resemblyzer-attention' or"),
    Case("head-pooling-unknown", T + "--head-pooling max", "--head-pooling: must be one of attention, meanstd"),
    Case("tune-layers-for-scratch", T + "--encoder-tune-layers 1",
         "encoder_tune_layers: applies to init 'resemblyzer-attention'"),
    Case("tune-layers-negative", T + "--encoder-tune-layers -1", "--encoder-tune-layers: must be an integer >= 0"),
    Case("balance-unknown", T + "--balance everything", "--balance: must be one of none, class, corpus+class"),
    Case("whisper-spec-augment", T + "--init whisper-attention --spec-augment", "spec_augment works on MFCC inputs"),
    Case("rz-states-spec-augment", T + "--init resemblyzer-attention --spec-augment", "spec_augment works on MFCC inputs"),
    Case("dropout-for-init", T + "--init resemblyzer-attention --dropout 0.2", "dropout: applies to the scratch ResNet only"),
    Case("input-norm-for-init", T + "--init resemblyzer --input-norm", "input_norm: applies to the scratch ResNet only"),
    Case("whisper-layer-big", T + "--init whisper-attention --whisper-layer 99",
         "--whisper-layer: must be an integer >= 0 and <= 64"),
    Case("whisper-layer-negative", T + "--init whisper-attention --whisper-layer -1",
         "--whisper-layer: must be an integer >= 0"),
    Case("init-missing-file", T + "--init @TMP/none.pt", "none.pt: model file is missing"),
    Case("init-text-file", T + "--init @TMP/speaker.pt", "speaker.pt: not a readable checkpoint", {"speaker.pt": "junk"}),
    Case("init-emotion-model", T + "--init @RUN/model.pt", "model.pt: holds a model of kind 'emotion'; this needs one of kind 'speaker'"),
    Case("noise-aug-without-root", T + "--noise-aug", "--noise-aug needs --noise-root"),
    Case("noise-root-missing", T + "--noise-aug --noise-root @TMP/none", "none: MUSAN folder is missing"),
    Case("noise-root-is-file", T + "--noise-aug --noise-root @WAV", "is a file, not a folder; give the noise folder"),
    Case("noise-root-one-clip", T + "--noise-aug --noise-root @TMP/n", "MUSAN noise needs at least 2 audio files",
         {"n/noise/a.wav": "x", "n/music/a.wav": "x"}),
    Case("lr-schedule-unknown", T + "--lr-schedule linear", "--lr-schedule: must be one of constant, cosine"),
    Case("select-unknown", T + "--select worst", "--select: must be one of best-dev, average"),
    Case("dropout-big", T + "--dropout 0.95", "--dropout: must be a number >= 0 and <= 0.9"),
    Case("label-smoothing-one", T + "--label-smoothing 1", "--label-smoothing: must be a number >= 0 and <= 0.9"),
    Case("weight-decay-negative", T + "--weight-decay -1", "--weight-decay: must be a number >= 0"),
    Case("piece-seconds-negative", T + "--piece-seconds -1", "--piece-seconds: must be a number >= 0"),
    Case("width-huge", T + "--width 100000", "--width: must be an integer >= 1 and <= 512"),
    Case("threads-huge", T + "--threads 100000", "--threads: must be an integer >= 0 and <= 1024"),
    Case("encoder-lr-scale-huge", T + "--encoder-lr-scale 1000", "--encoder-lr-scale: must be a number >= 0 and <= 100"),
    Case("fold-pattern-matches-none", T + "--fold zz-*", "--fold 'zz-*' matches none of the folds"),
    Case("data-is-file", "train --data @WAV --out @OUT --preset tiny", "spk00_sad_000.wav/manifest.jsonl: missing"),
    Case("cfg-binary", T + "--config @WAV", "holds NUL bytes: it looks like binary data"),
    Case("cfg-utf16", CFG, "cfg.yaml: is UTF-16 text", {"cfg.yaml": "epochs: 1\n".encode("utf-16")}),
    Case("cfg-folder", T + "--config @TMP", "is a folder, not a file"),
    Case("cfg-not-yaml", CFG, "cfg.yaml: not valid YAML", {"cfg.yaml": "epochs: [1\n"}),
    Case("cfg-init-list", CFG, "cfg.yaml:init: must be a text", {"cfg.yaml": "init: [a, b]\n"}),
    Case("cfg-whisper-layer-for-scratch", CFG, "whisper_layer: applies to init 'whisper-attention'",
         {"cfg.yaml": "whisper_layer: 2\n"}),
    Case("cfg-train-not-mapping", CFG, "cfg.yaml:train: expected a mapping of training options",
         {"cfg.yaml": "train: 3\nout: x\n"}),
    # ---- predict: every file and option before the model is read
    Case("predict-folder-without-audio", "predict @RUN @TMP/notes", "notes: no .wav or .flac files in this folder",
         {"notes/a.txt": "x"}),
    Case("predict-folder-with-bad-audio", "predict @RUN @BAD", "empty.wav: audio file is empty"),
    Case("predict-run-folder-as-audio", "predict @RUN @WAV @RUN", "is a model folder, not audio; give the model first"),
    Case("predict-missing-after-audio", "predict @RUN @WAV @TMP/none.wav", "none.wav: audio file is missing"),
    Case("predict-truncated-flac", "predict @RUN @TMP/cut.flac", "cut.flac: cannot read audio after 0.0 s",
         {"cut.flac": flac_bytes(3000)}),
    Case("predict-flac-header-only", "predict @RUN @TMP/cut.flac", "cut.flac: cannot read audio", {"cut.flac": flac_bytes(60)}),
    Case("predict-model-without-audio", "predict @RUN", "is a model; give audio files after it"),
    Case("predict-text-model", "predict @TMP/m.pt @WAV", "m.pt: not a readable checkpoint", {"m.pt": "junk"}),
    Case("predict-missing-model", "predict @TMP/none @WAV", "none: no such run directory or model file"),
    Case("predict-text-onnx", "predict @TMP/m.onnx @WAV", "m.onnx: not a readable ONNX model", {"m.onnx": "junk"}),
    Case("predict-out-user-file", "predict @RUN @WAV --out @TMP/p.csv", "p.csv: exists; pass --force", {"p.csv": "mine"}),
    Case("predict-force-user-file", "predict @RUN @WAV --out @TMP/p.csv --force", "p.csv: exists and was not written",
         {"p.csv": "mine"}),
    Case("predict-out-folder", "predict @RUN @WAV --out @TMP/d.csv", "d.csv: is a folder; --out names a file",
         {"d.csv/x": "x"}),
    Case("predict-out-parent-is-file", "predict @RUN @WAV --out @TMP/f/p.csv", "f: is a file, not a folder", {"f": "x"}),
    Case("predict-out-suffix", "predict @RUN @WAV --out @TMP/p.txt",
         "--out: @TMP/p.txt: the file name must end in .jsonl or .csv"),
    Case("predict-plot-user-file", "predict @RUN @WAV --plot @TMP/p.png", "p.png: exists; pass --force", {"p.png": "mine"}),
    Case("predict-plot-same-file-twice", "predict @RUN @WAV @WAV --plot @TMP/plots", "two outputs of this command would share"),
    Case("predict-threads-zero", "predict @RUN @WAV --threads 0", "--threads: must be an integer >= 1"),
    Case("predict-threads-negative", "predict @RUN @WAV --threads -1", "--threads: must be an integer >= 1"),
    Case("predict-hop-over-window", "predict @RUN @WAV --window 1 --hop 2", "--hop: must be at most the window (1 s)"),
    Case("predict-hop-zero", "predict @RUN @WAV --hop 0", "--hop: must be a number >= 0.01"),
    Case("predict-hop-nan", "predict @RUN @WAV --hop nan", "--hop: must be a number >= 0.01 and <= 3600 (or unset), not nan"),
    Case("predict-engine-bogus", "predict @RUN @WAV --engine bogus", "--engine: must be one of auto, torch, onnx"),
    Case("predict-batch-size-zero", "predict @RUN @WAV --batch-size 0", "--batch-size: must be an integer >= 1"),
    Case("predict-vad-bogus", "predict @RUN @WAV --vad loud", "--vad: must be one of energy, silero"),
    Case("predict-device-bogus", "predict @RUN @WAV --device tpu", "--device: must be cpu, cuda or cuda:N"),
    Case("predict-onnx-on-cuda", "predict @RUN @WAV --engine onnx --device cuda", "--device cuda: "),
    # ---- evaluate
    Case("eval-noise-root-missing", "evaluate @RUN --snr 5 --noise-root @TMP/none", "none: MUSAN folder is missing"),
    Case("eval-noise-root-is-file", "evaluate @RUN --snr 5 --noise-root @WAV",
         "is a file, not a folder; give the noise folder"),
    Case("eval-noise-root-empty", "evaluate @RUN --snr 5 --noise-root @TMP", "noise: MUSAN noise folder is missing"),
    Case("eval-snr-below-range", "evaluate @RUN --snr -21 --noise-root @NOISE",
         "--snr: must be a number >= -20 and <= 60, not -21"),
    Case("eval-seed-huge", "evaluate @RUN --seed 4294967296", "--seed: must be an integer >= 0 and <= 4294967295"),
    Case("eval-text-model", "evaluate @TMP/model.pt", "model.pt: not a readable checkpoint", {"model.pt": "junk"}),
    Case("eval-audio-as-run", "evaluate @WAV", "spk00_sad_000.wav: not a readable checkpoint"),
    Case("eval-unfinished-run", "evaluate @TMP/run", "run has no model.pt yet", {"run/config.yaml": "epochs: 1\n"}),
    # ---- grid configs and the grid command's own options
    Case("grid-init-unknown", G, "init model @TMP/bogus is missing", {"g.yaml": grid_yaml(init=["bogus"])}),
    Case("grid-snrs-negative", G, "g.yaml:snrs: item -21 must be a number >= -20",
         {"g.yaml": grid_yaml(snrs=[5, -21], noise_root="/x")}),
    Case("grid-snrs-nan", G, "g.yaml:snrs: item nan must be a number",
         {"g.yaml": grid_yaml(noise_root="/x").replace("snrs: []", "snrs: [.nan]")}),
    Case("grid-snrs-text", G, "g.yaml:snrs: item 'loud' must be a number",
         {"g.yaml": grid_yaml(snrs=["loud"], noise_root="/x")}),
    Case("grid-snrs-without-noise-root", G, "noisy tests need noise_root", {"g.yaml": grid_yaml(snrs=[5])}),
    Case("grid-noise-data-without-root", G, "clean+noise training and noisy tests need noise_root",
         {"g.yaml": grid_yaml(training_data=["clean+noise"])}),
    Case("grid-noise-root-missing", G, "none: MUSAN folder is missing",
         {"g.yaml": grid_yaml(snrs=[5], noise_root="@TMP/none")}),
    Case("grid-noise-root-no-pools", G, "MUSAN noise folder is missing", {"g.yaml": grid_yaml(snrs=[5], noise_root="@TMP")}),
    Case("grid-noise-root-is-file", G, "is a file, not a folder; give the noise folder",
         {"g.yaml": grid_yaml(training_data=["clean+noise"], noise_root="@WAV")}),
    Case("grid-workers-huge", G, "g.yaml:workers: must be an integer >= 1 and <= 256", {"g.yaml": grid_yaml(workers=100000)}),
    Case("grid-seeds-huge-list", G, "g.yaml:seeds: has 20000 items; at most 10000",
         {"g.yaml": grid_yaml(seeds=list(range(20000)))}),
    Case("grid-seeds-twice", G, "g.yaml:seeds: lists 0 twice", {"g.yaml": grid_yaml(seeds=[0, 0])}),
    Case("grid-seed-huge", G, "g.yaml:seeds: item 4294967296 must be an integer", {"g.yaml": grid_yaml(seeds=[2**32])}),
    Case("grid-folds-empty", G, "g.yaml:folds: must be a non-empty list", {"g.yaml": grid_yaml(folds=[])}),
    Case("grid-copypaste-empty", G, "g.yaml:copypaste: must be a non-empty list", {"g.yaml": grid_yaml(copypaste=[])}),
    Case("grid-train-not-mapping", G, "g.yaml:train: must be a mapping of options", {"g.yaml": grid_yaml(train=3)}),
    Case("grid-train-cell-option", G, "g.yaml:train: unknown option 'data'", {"g.yaml": grid_yaml(train={"data": "/x"})}),
    Case("grid-baseline-text", G, "g.yaml:baseline: must be true or false", {"g.yaml": grid_yaml(baseline="yes")}),
    Case("grid-whisper-layer-for-scratch", G, "whisper_layer: applies to init 'whisper-attention' only",
         {"g.yaml": grid_yaml(train={"epochs": 1, "whisper_layer": 2})}),
    Case("grid-whisper-spec-augment", G, "spec_augment works on MFCC inputs",
         {"g.yaml": grid_yaml(init=["whisper-attention"], train={"epochs": 1, "spec_augment": True})}),
    Case("grid-data-missing", G, "none/manifest.jsonl: missing", {"g.yaml": grid_yaml(data="@TMP/none")}),
    Case("grid-out-is-file", G, "is a file, not a folder; give the grid another out:", {"g.yaml": grid_yaml(out="@WAV")}),
    Case("grid-out-user-folder", G, "audio: is not a copypaste-ser grid folder", {"g.yaml": grid_yaml(out="@AUDIO")}),
    Case("grid-not-yaml", G, "g.yaml: not valid YAML", {"g.yaml": "data: [\n"}),
    Case("grid-utf16", G, "g.yaml: is UTF-16 text", {"g.yaml": grid_yaml().encode("utf-16")}),
    Case("grid-missing-config", "grid @TMP/none.yaml", "none.yaml: no such file"),
    Case("grid-cli-init-not-in-config", G + " --init resemblyzer", "grid: init 'resemblyzer' is not in the config",
         {"g.yaml": grid_yaml()}),
    Case("grid-cli-data-not-in-config", G + " --training-data clean+noise", "training_data 'clean+noise' is not in the config",
         {"g.yaml": grid_yaml()}),
    Case("grid-cli-fold-not-in-config", G + " --fold zz", "grid: folds 'zz' is not in the config", {"g.yaml": grid_yaml()}),
    Case("grid-cli-seed-huge", G + " --seed 4294967296", "--seed: must be an integer >= 0 and <= 4294967295",
         {"g.yaml": grid_yaml()}),
    Case("grid-launcher-unknown", G + " --launcher pbs", "grid: --launcher must be one of local, slurm",
         {"g.yaml": grid_yaml()}),
    Case("grid-slurm-not-pair", G + " --launcher slurm --slurm partition", "grid: --slurm takes KEY=VALUE",
         {"g.yaml": grid_yaml()}),
    Case("grid-slurm-on-local", G + " --slurm a=b", "grid: --slurm options need --launcher slurm", {"g.yaml": grid_yaml()}),
    Case("grid-report-user-file", "grid @GRIDDIR/done.yaml --no-run --report @TMP/r", "report.md: exists and was not written",
         {"r/report.md": "mine"}),
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
    """A corpus with a trained run, finished grids (one seed; two seeds), bad audio files,
    damaged corpora and a noise folder in MUSAN layout."""
    from copypaste_ser.data.corpora.synthetic import generate
    from copypaste_ser.data.prepare import prepare_to_dir
    from copypaste_ser.experiments.grid import run_grid
    from copypaste_ser.experiments.grid_config import GridConfig
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
    _copy_corpus(data, c / "extra-label", _json_edit("corpus.json", lambda m: {**m, "labels": [*m["labels"], "fear"]}))
    noise_root = root / "noise"  # MUSAN layout: two clips per kind (a train and a test pool)
    for kind in ("noise", "music"):
        (noise_root / kind).mkdir(parents=True)
        for k in range(2):
            write_audio(noise_root / kind / f"{k}.wav", np.roll(noise, 4000 * k))
    grids = root / "grids"
    grids.mkdir()
    done = yaml.safe_load(grid_yaml().replace("@DATA", str(data)).replace("@OUT", str(root / "grid-out")))
    (grids / "done.yaml").write_text(yaml.safe_dump(done))
    (grids / "changed.yaml").write_text(yaml.safe_dump({**done, "train": {"epochs": 2, "threads": 1}}))
    (grids / "preset.yaml").write_text(yaml.safe_dump({**done, "preset": "cpu"}))
    (grids / "seeds.yaml").write_text(yaml.safe_dump({**done, "out": str(root / "grid-seeds"), "seeds": [0, 1]}))
    run_grid(GridConfig.load(grids / "done.yaml"), progress=False)
    run_grid(GridConfig.load(grids / "seeds.yaml"), progress=False)  # two seeds: an ensemble's input
    return {"ROOT": root, "DATA": data, "RUN": root / "run", "AUDIO": root / "audio", "BAD": bad, "C": c,
            "GRIDDIR": grids, "WAV": next((root / "audio").glob("*.wav")), "NOISE": noise_root}


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
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            (tmp_path / name).write_bytes(text)
        else:
            (tmp_path / name).write_text(_expand(text, paths))
    before = snapshot(world["ROOT"])
    for _ in range(case.repeat):
        code, output = run_cli(_expand(case.argv, paths).split())
        lines = output.strip().splitlines()
        assert code == 2, output
        assert len(lines) == 1 and lines[0].startswith("error: "), output
        assert _expand(case.expect, paths) in lines[0], output
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


def test_there_are_at_least_200_cases():
    assert len(CASES) >= 200 and len({c.id for c in CASES}) == len(CASES)


def test_predict_says_no_speech_for_silence_and_dc(world: dict[str, Path], tmp_path: Path):
    write_audio(tmp_path / "dc.wav", np.full(16000, 0.25, np.float32))
    quiet_then_loud = np.concatenate([np.zeros(16000, np.float32), sf.read(world["WAV"], dtype="float32")[0]])
    write_audio(tmp_path / "mixed.wav", quiet_then_loud)
    code, output = run_cli(["predict", str(world["RUN"]), str(world["BAD"] / "silent.wav"), str(tmp_path / "dc.wav")])
    assert code == 0 and output.splitlines() == [f"{world['BAD'] / 'silent.wav'}: no speech",
                                                   f"{tmp_path / 'dc.wav'}: no speech",
                                                   "2 files: no speech 2 (100 %)"], output
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
