"""The ``copypaste-ser`` command: a thin typer layer over the Python API."""

from __future__ import annotations

import os

# Bit-identical CPU runs (reproducible.py): MKL reads this once, when torch loads it, so it is set
# here, before any command imports torch, and not on `import copypaste_ser` (a library must not
# change its caller's environment: set MKL_CBWR=AUTO,STRICT yourself for the same effect).
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

import json
import signal
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

from copypaste_ser.cli import train_options as opt
from copypaste_ser.cli.app import app
from copypaste_ser.errors import UserError


@app.command()
def prepare(
    corpus: str = typer.Argument(..., help="emodb, ravdess, crema-d, iemocap, msp-podcast, folder, synthetic; "
                                         "speaker corpora: librispeech, voxceleb"),
    out: Path = typer.Option(..., "--out", help="Folder for manifest.jsonl, corpus.json, protocol.json"),
    root: Optional[Path] = typer.Option(None, "--root", help="Corpus folder on disk (synthetic: where to write audio)"),
    classes: Optional[str] = typer.Option(None, help="emodb/ravdess/crema-d: 'all' or 'paper4'"),
    merge_excited: bool = typer.Option(False, help="iemocap: count 'excited' as happy"),
    csv: Optional[Path] = typer.Option(None, help="folder: a CSV list; `prepare folder --help` says its columns"),
    label_map: Optional[str] = typer.Option(None, help="folder: rename raw labels, e.g. a=angry,n=neutral"),
    folds: Optional[str] = typer.Option(None, help="loso or K: speaker-independent folds (any emotion corpus)"),
    test_set: Optional[str] = typer.Option(None, help="msp-podcast: Test1 or Test2"),
    subsets: Optional[str] = typer.Option(None, help="librispeech: comma-separated subset folders to keep"),
    force: bool = typer.Option(False, help="Overwrite an existing prepared corpus"),
) -> None:
    """Read a corpus from disk and write its manifest and split protocol.

    `copypaste-ser prepare folder --help` describes your own corpus's CSV, split values and folds.
    """
    from copypaste_ser.data.prepare import prepare_to_dir

    options = {k: v for k, v in dict(classes=classes, csv=csv, test_set=test_set, subsets=subsets,
                                     label_map=label_map, folds=folds).items() if v is not None}
    if merge_excited:
        options["merge_excited"] = True
    manifest, protocol = prepare_to_dir(corpus, root, out, force=force, **options)
    typer.echo(manifest.summary())
    typer.echo(f"folds: {', '.join(protocol.names)} (default {protocol.default}) -> {out}")
    if len(protocol.folds) > 1:
        typer.echo("test utterances per fold: " + ", ".join(f"{f.name} {len(f.test)}" for f in protocol.folds))


@app.command()
def combine(
    data: list[Path] = typer.Argument(..., help="Prepared corpora (two or more)"),
    out: Path = typer.Option(..., "--out", help="Folder for the combined corpus"),
    labels: Optional[str] = typer.Option(None, help="Comma-separated labels every corpus has (default: "
                                         "all the labels they share)"),
    seed: int = typer.Option(0, help="Seed of the dev speakers drawn from each corpus"),
    within: Optional[str] = typer.Option(None, help="Keep this corpus's own folds (named by its folder) and add "
                                         "the other corpora to their training sets, instead of "
                                         "leave-one-corpus-out folds"),
    force: bool = typer.Option(False, help="Overwrite an existing combined corpus"),
) -> None:
    """Several prepared corpora as one: shared labels, leave-one-corpus-out folds (or --within NAME's own)."""
    from copypaste_ser.data.prepare import combine_to_dir

    wanted = [x.strip() for x in labels.split(",") if x.strip()] if labels else None
    manifest, protocol = combine_to_dir(data, out, wanted, seed, force, within)
    typer.echo(manifest.summary())
    typer.echo(f"folds: {', '.join(protocol.names)} -> {out}")
    typer.echo("test utterances per fold: " + ", ".join(f"{f.name} {len(f.test)}" for f in protocol.folds))


@app.command()
def download(
    corpus: str = typer.Argument(..., help="emodb, ravdess, musan or librispeech-test-other"),
    out: Path = typer.Option(..., "--out", help="Folder to download and unpack into"),
    force: bool = typer.Option(False, help="Download again even if the archive is there"),
) -> None:
    """Download and unpack a freely available corpus (then run `prepare` on it)."""
    from copypaste_ser.data.download import fetch_corpus

    typer.echo(f"unpacked into {fetch_corpus(corpus, out, force=force)}")


@app.command()
def train(
    data: opt.Data, out: opt.Out, preset: opt.Preset = None, config: opt.ConfigFile = None,
    copypaste: opt.CopyPaste = None, epochs: opt.Int = None, batch_size: opt.Int = None, lr: opt.Float = None,
    chunk_seconds: opt.Float = None, piece_seconds: opt.PieceSeconds = None,
    copypaste_join: opt.CopyPasteJoin = None, width: opt.Width = None, fold: opt.Fold = None,
    seed: opt.Seeds = [0],  # noqa: B006 (typer copies its defaults)
    noise_aug: opt.NoiseAug = False, noise_root: opt.NoiseRoot = None,
    noise_epoch_fraction: opt.NoiseFraction = None, noise_copies: opt.NoiseCopies = None,
    init: opt.Init = None, freeze_encoder: opt.Flag = False, encoder_lr_scale: opt.Float = None,
    head_pooling: opt.HeadPooling = None, encoder_tune_layers: opt.TuneLayers = None,
    encoder_model: opt.EncoderModel = None, encoder_layer: opt.EncoderLayer = None,
    encoder_mix: opt.EncoderMix = False, whisper_model: opt.WhisperModel = None,
    whisper_layer: opt.WhisperLayer = None, balance: opt.Balance = None, speaker_norm: opt.SpeakerNorm = None,
    weight_decay: opt.WeightDecay = None, label_smoothing: opt.Float = None, dropout: opt.Dropout = None,
    lr_schedule: opt.LrSchedule = None, input_norm: opt.InputNorm = False, spec_augment: opt.SpecAugment = False,
    select: opt.Select = None, threads: opt.Threads = None, force: opt.Force = False, quiet: opt.Quiet = False,
) -> None:
    """Train an emotion model; with several seeds, report mean +- std."""
    options = dict(locals())  # every parameter, before any other name is bound here
    from copypaste_ser.experiments.cross_validation import is_fold_pattern, train_folds
    from copypaste_ser.training.config import check_applicable, make_config
    from copypaste_ser.training.loop import train_seeds
    from copypaste_ser.validation import check_seeds

    check_seeds(seed)  # every option is checked before anything is read or written
    cfg = make_config(preset, config, **opt.config_overrides(options))
    check_applicable(cfg)  # before any folder is made
    if is_fold_pattern(fold):  # every fold: OUT/<fold>, then results.csv for `report OUT`
        summary = train_folds(cfg, out, fold, seeds=seed, force=force, progress=not quiet)
    else:
        summary = train_seeds(cfg, out, seeds=seed, force=force, progress=not quiet)
    if summary:
        typer.echo(summary["text"])


@app.command("pretrain-speaker")
def pretrain_speaker(
    data: Path = typer.Option(..., help="Prepared speaker corpus (prepare librispeech|voxceleb)"),
    out: Path = typer.Option(..., help="Run folder; OUT/model.pt is a speaker model for `train --init`"),
    preset: str = typer.Option("cpu", help="paper (GPU), cpu (2 cores) or tiny (tests)"),
    epochs: Optional[int] = typer.Option(None),
    batch_size: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None),
    chunk_seconds: float = typer.Option(4.0, help="Random training chunk (s)"),
    width: Optional[int] = typer.Option(None, help="Channel width of the first stage (must match the emotion runs)"),
    noise_root: Optional[Path] = typer.Option(None, help="Noise corpus in MUSAN layout: adds six noise/music copies"),
    noise_epoch_fraction: Optional[float] = typer.Option(None, help="Share of the noisy copies drawn per epoch"),
    seed: int = typer.Option(0),
    threads: int = typer.Option(0, help="torch threads (0 = torch's default)"),
    force: bool = typer.Option(False, help="Overwrite an existing run folder"),
    quiet: bool = typer.Option(False, help="No progress bars"),
) -> None:
    """Train an x-vector style speaker classifier; report held-out speaker-ID accuracy."""
    from copypaste_ser.training.speaker import pretrain_speaker as run

    m = run(data, out, preset=preset, epochs=epochs, batch_size=batch_size, lr=lr, chunk_seconds=chunk_seconds,
            noise_root=noise_root, noise_epoch_fraction=noise_epoch_fraction, seed=seed, threads=threads,
            width=width, force=force, progress=not quiet)
    if m:
        typer.echo(f"held-out speaker-ID accuracy {100 * m['accuracy']:.2f} % (top-5 {100 * m['top5_accuracy']:.2f} %, "
                   f"n={m['n']}, {m['speakers']} speakers) -> {out / 'model.pt'}")


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="Run folder or model file"),
    snr: Optional[float] = typer.Option(None, help="Corrupt the test set at this SNR (dB)"),
    noise_root: Optional[Path] = typer.Option(None, help="Noise corpus (default: the run's)"),
    seed: int = typer.Option(0, help="Seed of the noisy test set and the probe pairs"),
    split: str = typer.Option("test", help="test or dev"),
    probe: Optional[str] = typer.Option(None, help="'concat': emotional+neutral test concatenations"),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON"),
) -> None:
    """Score a trained run on clean or noisy data; optionally probe concatenations."""
    from copypaste_ser.evaluation.evaluate import evaluate_run

    m = evaluate_run(run, snr=snr, noise_root=str(noise_root) if noise_root else None, seed=seed,
                     split=split, probe=probe)
    if as_json:
        typer.echo(json.dumps(m, indent=1))
        return
    typer.echo(f"{m['condition']} {split}: weighted F1 {100 * m['weighted_f1']:.2f} %  UAR {100 * m['uar']:.2f} %  "
               f"accuracy {100 * m['accuracy']:.2f} %  (n={m['n']})")
    typer.echo("per-class F1 (%): " + ", ".join(f"{k} {100 * v:.1f}" for k, v in m["per_class_f1"].items()))
    if "probe" in m:
        p = m["probe"]
        typer.echo(f"concat probe ({p['pairs']} pairs): emotion kept {100 * p['emotion_kept_concat']:.1f} % "
                   f"vs recall alone {100 * p['emotion_recall_alone']:.1f} %; called neutral "
                   f"{100 * p['called_neutral_concat']:.1f} %")
    typer.echo(f"-> {m['output']}")


@app.command()
def predict(
    paths: list[Path] = typer.Argument(..., help="[RUN] FILES: a run folder, model.pt, model folder or .onnx "
                                       "file, then audio files or folders (their .wav/.flac files); without a model, "
                                       "the shipped default model"),
    model: Optional[Path] = typer.Option(None, "--model", help="The model (instead of a first argument)"),
    window: Optional[float] = typer.Option(None, help="Seconds per window (default 4); windows cover the "
                                           "whole file, and are printed one by one when given"),
    hop: Optional[float] = typer.Option(None, help="Seconds between window starts (default: the window)"),
    engine: str = typer.Option("auto", help="torch, onnx (onnxruntime) or auto: onnx where the model "
                               "ships an ONNX file (the default model does), else torch"),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N (torch engine)"),
    batch_size: int = typer.Option(32, help="Windows scored together"),
    vad: str = typer.Option("auto", help="auto (silero where installed, else energy), silero (speech apart "
                            "from noise and music; pip install silero-vad) or energy (Kaldi's rule, as in training)"),
    out: Optional[Path] = typer.Option(None, "--out", help="Write every window and file row to this .jsonl "
                                       "or .csv"),
    plot: Optional[Path] = typer.Option(None, help="Timeline PNG of the probabilities (a folder of PNGs for "
                                        "several files)"),
    as_json: bool = typer.Option(False, "--json", help="JSON lines on stdout"),
    force: bool = typer.Option(False, help="Replace --out / --plot files an earlier predict wrote"),
    threads: Optional[int] = typer.Option(None, help="CPU threads for the model (default: torch's); 1 is "
                                          "fastest on a busy machine"),
    min_confidence: Optional[float] = typer.Option(None, help="Answer 'uncertain' for a file whose best class "
                                                   "is less likely than this (0-1; default: the model's own, or 0)"),
    enrol: Optional[list[Path]] = typer.Option(None, "--enrol", help="A speaker-normalised model: the speaker's "
                                               "enrolment recordings (repeatable; neutral speech for a "
                                               "neutral-enrolment model); every FILE is taken to be theirs"),
) -> None:
    """The emotion of each recording (any length), with class probabilities per window."""
    from copypaste_ser.cli.predict import run_predict

    run_predict(paths, model, window=window, hop=hop, engine=engine, device=device, batch_size=batch_size,
                vad=vad, out=out, plot=plot, as_json=as_json, echo=typer.echo, force=force, threads=threads,
                min_confidence=min_confidence, enrol=enrol)


@app.command()
def export(
    run: Path = typer.Argument(..., help="Run folder, model.pt or model folder"),
    onnx: Path = typer.Option(..., "--onnx", help="ONNX file to write (dynamic batch and time axes)"),
    force: bool = typer.Option(False, help="Replace an ONNX file copypaste-ser exported (never another file)"),
) -> None:
    """Export a model to ONNX, for `predict --engine onnx` or any onnxruntime."""
    from copypaste_ser.inference.export import export_onnx

    typer.echo(f"-> {export_onnx(run, onnx, force=force)}")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out"), help="Working folder"),
    force: bool = typer.Option(False, help="Start again from scratch"),
    epochs: int = typer.Option(12, help="Epochs per model"),
) -> None:
    """Synthetic corpus -> prepare -> train (the four CopyPaste schemes) -> evaluate -> table, in minutes."""
    from copypaste_ser.experiments.demo import run_demo

    run_demo(out, force=force, epochs=epochs)


from copypaste_ser.cli import experiments as cli_experiments  # noqa: E402,F401  (registers grid, report, baseline, choose, ensemble, fuse)


def _interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    # `kill` (SIGTERM) stops a run like Ctrl-C: logged, grid workers ended, resumable
    signal.signal(signal.SIGTERM, _interrupt)
    warnings.formatwarning = lambda message, *_: f"warning: {message}\n"  # one line, not the source line too
    if _folder_help(sys.argv[1:]):
        return
    try:
        app()
    except UserError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:  # a read-only folder, a full disk: one line naming the path, no traceback
        where = f"{e.filename}: " if e.filename else ""
        typer.echo(f"error: {where}{e.strerror or e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as e:
        if e.code == 130:  # typer turns Ctrl-C into exit status 130 without a word
            _interrupted()
        raise


def _folder_help(args: list[str]) -> bool:
    """`prepare folder --help`: the folder import's own help, printed as written (the generic
    help table would wrap it to the terminal and cut its column lists)."""
    if args[:2] != ["prepare", "folder"] or not {"--help", "-h"} & set(args[2:]):
        return False
    from copypaste_ser.data.corpora.folder import HELP

    typer.echo(HELP)
    return True


def _interrupted() -> None:
    typer.echo("interrupted: run the same command again to resume", err=True)
    sys.exit(130)


if __name__ == "__main__":
    main()
