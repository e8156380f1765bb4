"""The model of a run: built at random or from ``cfg.init`` (transfer.py), its optimiser,
its frozen parts, and the model file (``model.pt``) a run saves of it.
"""

from __future__ import annotations

import math

import torch
from torch.nn.modules.batchnorm import _NormBase

from copypaste_ser.data.manifest import Manifest
from copypaste_ser.errors import UserError
from copypaste_ser.models.checkpoint import FORMAT, with_checksum
from copypaste_ser.training.config import RESEMBLYZER, STATE_HEAD_INITS, TrainConfig, check_applicable


def check_run_inputs(cfg: TrainConfig) -> None:
    """What a run reads besides its corpus, checked before its folder is made: the noise corpus
    of ``noise_aug`` (its listing only) and a speaker model file given as ``init``."""
    from pathlib import Path

    if cfg.noise_aug:
        if not cfg.noise_root:
            raise UserError("--noise-aug needs --noise-root, a folder in MUSAN layout (noise/, music/)")
        from copypaste_ser.data.corpora.musan import prepare_musan
        prepare_musan(Path(cfg.noise_root))
    if cfg.init and cfg.init not in (RESEMBLYZER, *STATE_HEAD_INITS):
        from copypaste_ser.models.checkpoint import load_model_file
        load_model_file(Path(cfg.init), kind="speaker")


def build_emotion_model(cfg: TrainConfig, num_classes: int) -> tuple[torch.nn.Module, dict]:
    """The run's model (emotion or speaker classes) and its provenance: random, or from
    ``cfg.init`` (a speaker model file or "resemblyzer", see transfer.py)."""
    from copypaste_ser.models import PRESETS, ModelConfig, build_model

    check_applicable(cfg)
    if cfg.init:
        from copypaste_ser.training.transfer import emotion_model_from_speaker
        model, provenance = emotion_model_from_speaker(cfg.init, num_classes, cfg.feature_config,
                                                       pooling=cfg.head_pooling, tuned_layers=cfg.encoder_tune_layers)
        init_width = getattr(getattr(model, "config", None), "width", None)
        if cfg.width and init_width is not None and init_width != cfg.width:
            raise UserError(f"{cfg.init}: speaker model has width {init_width} but this run asks for width "
                            f"{cfg.width}; leave width unset or pretrain with --width {cfg.width}")
        return model, provenance
    if cfg.preset not in PRESETS:
        raise UserError(f"unknown model preset {cfg.preset!r}: choose one of {', '.join(PRESETS)}")
    overrides = {"width": cfg.width} if cfg.width else {}
    if cfg.dropout is not None:
        overrides["dropout"] = cfg.dropout
    if cfg.input_norm:
        overrides["input_norm"] = True
    mcfg = ModelConfig(**{**PRESETS[cfg.preset], **overrides, "feat_dim": cfg.feature_config.dim,
                          "num_classes": num_classes})
    return build_model(mcfg), {"init": "random"}


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (AdamW with weight decay); the encoder at ``encoder_lr_scale`` of the head's rate,
    or frozen with ``freeze_encoder``. The encoder is every parameter outside ``output.``, or
    those a model names in ``encoder_prefixes`` (the tuned LSTM layers of a head model)."""
    prefixes = getattr(model, "encoder_prefixes", None)
    in_encoder = (lambda n: n.startswith(prefixes)) if prefixes else (lambda n: not n.startswith("output."))
    head = [p for n, p in model.named_parameters() if not in_encoder(n)]
    body = [p for n, p in model.named_parameters() if in_encoder(n)]
    # AdamW only with weight decay, so runs without it stay the paper's Adam
    opt = (lambda g: torch.optim.AdamW(g, lr=cfg.lr, weight_decay=cfg.weight_decay)) if cfg.weight_decay \
        else (lambda g: torch.optim.Adam(g, lr=cfg.lr))
    if cfg.freeze_encoder:
        for p in body:
            p.requires_grad_(False)
        return opt(head)
    return opt([{"params": body, "lr": cfg.lr * cfg.encoder_lr_scale}, {"params": head, "lr": cfg.lr}])


def epoch_lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """The share of each group's base rate used in ``epoch`` (1-based): 1 (constant), or a
    half cosine from 1 in the first epoch towards 0 after the last (cosine)."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))
    raise ValueError(f"unknown lr schedule {schedule!r}")


def set_epoch_lr(optimizer: torch.optim.Optimizer, cfg: TrainConfig, epoch: int) -> None:
    """Set every group's rate for ``epoch`` from its base rate, kept in the group (and so in
    the optimizer's state dict): a resumed run gets the same rate as an uninterrupted one."""
    factor = epoch_lr_factor(cfg.lr_schedule, epoch, cfg.epochs)
    for group in optimizer.param_groups:
        group.setdefault("base_lr", group["lr"])
        group["lr"] = group["base_lr"] * factor


def freeze_encoder_norms(model: torch.nn.Module) -> None:
    """Frozen means frozen: normalisation layers outside the head (those make_optimizer
    freezes) use and keep their running statistics. Call after every ``model.train()``."""
    for name, module in model.named_modules():
        if isinstance(module, _NormBase) and not name.startswith("output"):
            module.eval()


def model_file(model: torch.nn.Module, manifest: Manifest, cfg: TrainConfig, provenance: dict,
               kind: str = "emotion", labels: list[str] | None = None) -> dict:
    """The self-describing model file (``model.pt``): weights, architecture, labels, features,
    training options and provenance."""
    return with_checksum({"format": FORMAT, "kind": kind,
            "model": {"arch": getattr(model, "arch", "thin-resnet34"), "config": model.config.to_dict()},
            "labels": list(labels if labels is not None else manifest.labels), "corpus": manifest.name,
            "neutral": manifest.neutral, "features": dict(cfg.features), "train": cfg.to_dict(),
            "provenance": provenance,
            # the standard layout whatever the model trained in (models/placement.py): safetensors needs it
            "state_dict": {k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
                           for k, v in model.state_dict().items()}})
