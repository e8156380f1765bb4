"""Transfer learning from a speaker model (paper 3.2.1): keep every layer, swap the output.

``train --init SPEAKER_MODEL`` (``TrainConfig.init``) fine-tunes from a ``kind: "speaker"``
model file made by ``pretrain-speaker`` (speaker.py): the same architecture is rebuilt,
every weight loaded, then ``replace_output(num_classes)`` puts a fresh emotion layer in
place of the speaker layer; all other parameters are kept (and trained, unless
``--freeze-encoder``; ``--encoder-lr-scale`` scales their learning rate).

``train --init resemblyzer`` starts from Resemblyzer's pretrained LSTM speaker encoder
instead (models/resemblyzer.py); its features are the mel40 power front end, which
config.make_config sets for it.

``train --init resemblyzer-attention`` keeps that encoder frozen and trains the paper's
attention-pooling head on the states of all its layers (models/encoder_head.py); its
features are mel40 power plus the cached encoder states (``resemblyzer-states``).

``train --init whisper-attention`` / ``--init ssl-attention`` train the same head on one block of
a frozen Whisper encoder / one layer of a frozen wav2vec 2.0, HuBERT or WavLM encoder
(``--encoder-model``, ``--encoder-layer``; features ``whisper-states`` / ``ssl-states``).

Refused with a one-line UserError: a file that is not a copypaste-ser model, an emotion
model, an unknown architecture, weights that do not fit, and a speaker model whose feature
config differs from the run's (the differing fields are named).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from copypaste_ser.errors import UserError
from copypaste_ser.features.mfcc import FeatureConfig, resemblyzer_features, resemblyzer_states_features
from copypaste_ser.models.checkpoint import load_model_file
from copypaste_ser.models.scoring import build_arch
from copypaste_ser.training.config import ENCODER_INITS, RESEMBLYZER, RESEMBLYZER_ATTENTION, WHISPER_ATTENTION


def file_sha1(path: str | Path) -> str:
    """First 12 hex digits of the file's SHA-1."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def check_features(theirs: FeatureConfig, ours: FeatureConfig, source: str) -> None:
    diff = theirs.differences(ours)
    if diff:
        shown = ", ".join(f"{k}: {getattr(theirs, k)!r} there, {getattr(ours, k)!r} here" for k in diff)
        raise UserError(f"{source}: speaker model was trained on other features than this run's ({shown})")


def emotion_model_from_speaker(path: str | Path, num_classes: int, feature_config: FeatureConfig,
                               pooling: str = "attention", tuned_layers: int = 0) -> tuple[torch.nn.Module, dict]:
    """(model with a new ``num_classes`` output layer, provenance for run.json and model.pt)."""
    if str(path) == RESEMBLYZER:
        return emotion_model_from_resemblyzer(num_classes, feature_config)
    if str(path) == RESEMBLYZER_ATTENTION:
        return emotion_model_on_resemblyzer_states(num_classes, feature_config, pooling, tuned_layers)
    if str(path) in ENCODER_INITS:
        return emotion_model_on_encoder_states(str(path), num_classes, feature_config, pooling, tuned_layers)
    path = Path(path)
    obj = load_model_file(path, kind="speaker")
    try:
        theirs = FeatureConfig.from_dict(obj["features"])
    except (KeyError, TypeError) as e:
        raise UserError(f"{path}: model file has no valid feature config ({e})") from None
    check_features(theirs, feature_config, str(path))
    spec = obj.get("model", {})
    arch = spec.get("arch")
    try:
        model = build_arch(arch, spec.get("config", {}), str(path))
        model.load_state_dict(obj["state_dict"])
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        raise UserError(f"{path}: weights do not fit the architecture it names "
                        f"({str(e).splitlines()[0]})") from None
    model.replace_output(num_classes)
    corpus = obj.get("corpus") or Path(obj.get("train", {}).get("data", "")).name or "unknown"
    provenance = {"init": str(path), "init_kind": "speaker", "init_corpus": corpus, "init_arch": arch,
                  "init_sha1": file_sha1(path), "init_speakers": len(obj.get("labels", []))}
    return model, provenance


def emotion_model_from_resemblyzer(num_classes: int,
                                   feature_config: FeatureConfig) -> tuple[torch.nn.Module, dict]:
    """Resemblyzer's pretrained encoder with a new output layer (needs the resemblyzer wheel)."""
    from copypaste_ser.models.resemblyzer import ARCH, ResemblyzerEmotion, weights_path

    weights = weights_path()
    check_features(resemblyzer_features(), feature_config, f"{weights} (--init resemblyzer)")
    model = ResemblyzerEmotion(num_classes, weights=weights)
    provenance = {"init": RESEMBLYZER, "init_kind": "speaker", "init_corpus": "resemblyzer 0.1.4 pretrained.pt",
                  "init_arch": ARCH, "init_sha1": file_sha1(weights), "init_weights": str(weights),
                  "features": "mel40-power, no mean normalisation (set automatically for --init resemblyzer)"}
    return model, provenance


def emotion_model_on_resemblyzer_states(num_classes: int, feature_config: FeatureConfig, pooling: str = "attention",
                                        tuned_layers: int = 0) -> tuple[torch.nn.Module, dict]:
    """A new attention (or mean+std) head on the Resemblyzer states (needs the wheel), the top
    ``tuned_layers`` LSTM layers starting from their pretrained weights."""
    from copypaste_ser.features.encoders import shared_encoder, weights_path
    from copypaste_ser.models.encoder_head import ARCH, EncoderAttentionEmotion, EncoderHeadConfig

    weights = weights_path()
    check_features(resemblyzer_states_features(), feature_config, f"{weights} (--init {RESEMBLYZER_ATTENTION})")
    model = EncoderAttentionEmotion(EncoderHeadConfig(num_classes=num_classes, pooling=pooling,
                                                      tuned_layers=tuned_layers))
    if tuned_layers:  # a frozen model needs no encoder here (its states come from the cache)
        model.load_tuned_layers(shared_encoder())
    frozen = "frozen" if not tuned_layers else f"top {tuned_layers} LSTM layer(s) fine-tuned"
    provenance = {"init": RESEMBLYZER_ATTENTION, "init_kind": "speaker", "init_arch": ARCH,
                  "init_corpus": f"resemblyzer 0.1.4 pretrained.pt ({frozen})", "init_sha1": file_sha1(weights),
                  "init_weights": str(weights), "features": "mel40-power + Resemblyzer LSTM states (all 3 layers)"}
    return model, provenance


def emotion_model_on_encoder_states(init: str, num_classes: int, feature_config: FeatureConfig,
                                    pooling: str = "attention", tuned_layers: int = 0) -> tuple[torch.nn.Module, dict]:
    """A new attention (or mean+std) head on one block of a frozen Whisper encoder's states
    (``init`` whisper-attention) or one layer of a wav2vec 2.0 / HuBERT / WavLM encoder (ssl-attention);
    Whisper's top ``tuned_layers`` blocks trained with it, from their pretrained weights, on the
    cached states of the block below them (``feature_config.encoder_layer``)."""
    from copypaste_ser.features import ssl_encoders, whisper_weights
    from copypaste_ser.features.whisper_states import shared_whisper
    from copypaste_ser.features.mfcc import SSL_KIND, WHISPER_KIND
    from copypaste_ser.models.encoder_head import SSL_ARCH, WHISPER_ARCH, EncoderAttentionEmotion, EncoderHeadConfig

    f = feature_config
    whisper = init == WHISPER_ATTENTION
    kind = WHISPER_KIND if whisper else SSL_KIND
    if f.kind != kind:
        raise UserError(f"--init {init}: needs {kind} features, not {f.kind!r}; "
                        "leave features unset (they are set from --encoder-model and --encoder-layer)")
    unit = "block" if whisper else "layer"
    states = f"{unit}s 0-{f.encoder_layer}" if f.encoder_mix else f"{unit} {f.encoder_layer}"
    which = f"{states}, learned weighted sum" if f.encoder_mix else states
    if whisper:
        from copypaste_ser.features.whisper_states import whisper_dims
        dims = whisper_dims(str(f.encoder_model))
        head = EncoderHeadConfig(num_classes=num_classes, pooling=pooling, encoder="whisper", input_dim=f.dim,
                                 whisper_model=f.encoder_model, whisper_layer=f.encoder_layer + tuned_layers,
                                 whisper_width=f.encoder_width, layer_mix=f.encoder_mix, tuned_layers=tuned_layers,
                                 whisper_heads=dims.heads, whisper_blocks=dims.blocks)
        top = f.encoder_layer + tuned_layers
        tuned = "" if not tuned_layers else f"; block {top} fine-tuned" if tuned_layers == 1 else \
            f"; blocks {f.encoder_layer + 1}-{top} fine-tuned"
        name, weights = f"Whisper {f.encoder_model} (frozen, {which}{tuned})", whisper_weights.weights_id
        described = f"Whisper log-mel rows + {states} states"
    else:
        head = EncoderHeadConfig(num_classes=num_classes, pooling=pooling, encoder="ssl", input_dim=f.dim,
                                 ssl_model=f.encoder_model, ssl_layer=f.encoder_layer, ssl_width=f.encoder_width,
                                 layer_mix=f.encoder_mix)
        family = ssl_encoders.shared_ssl(str(f.encoder_model)).family
        name, weights = f"{family} {f.encoder_model} (frozen, {which})", ssl_encoders.weights_id
        described = f"waveform rows ({f.input_dim} samples) + {states} states"
    provenance = {"init": init, "init_kind": "speech", "init_arch": WHISPER_ARCH if whisper else SSL_ARCH,
                  "init_corpus": name, "init_weights": weights(str(f.encoder_model)), "features": described}
    model = EncoderAttentionEmotion(head)
    if tuned_layers:  # Whisper only (check_applicable): the tuned blocks start from the pretrained ones
        model.load_tuned_layers(shared_whisper(str(f.encoder_model)))
    return model, provenance
