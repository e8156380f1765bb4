"""The whole SER model of Table 1: thin ResNet-34 -> attention pooling -> FC -> FC.

The same network, with ``num_classes`` = number of speakers, is the x-vector
style speaker classifier used for transfer learning: load its state dict,
then :meth:`EmotionResNet.replace_output` swaps only the final layer.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from copypaste_ser.models.pooling import MultiHeadAttentionPooling, lengths_to_mask
from copypaste_ser.models.resnet import ThinResNet34
from copypaste_ser.models.standardise import frame_statistics

PRESETS: dict[str, dict[str, Any]] = {
    # As published (Table 1): ~2.98 M parameters with 4 classes.
    "paper": dict(width=16, blocks=(3, 4, 6, 3), heads=32, embed_dim=400),
    # Same depth and head, a quarter of the channels, for CPUs (the width `train --preset cpu` uses).
    "cpu": dict(width=4, blocks=(3, 4, 6, 3), heads=32, embed_dim=400),
    # One block per stage (a thin ResNet-10) and a small head: for corpora of a few hundred
    # utterances, chosen on EmoDB-4 dev speakers (docs/results, issue 13).
    "small": dict(width=8, blocks=(1, 1, 1, 1), heads=4, embed_dim=64),
    # One block per stage: tests and the demo.
    "tiny": dict(width=4, blocks=(1, 1, 1, 1), heads=4, embed_dim=64),
}


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Everything needed to rebuild an :class:`EmotionResNet` (keyword-only)."""

    num_classes: int
    width: int = 16
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    feat_dim: int = 23
    heads: int = 32
    embed_dim: int = 400
    dropout: float = 0.0
    input_norm: bool = False  # standardise each coefficient with training-set statistics

    def __post_init__(self) -> None:
        try:
            blocks = tuple(operator.index(b) for b in self.blocks)
        except TypeError:
            raise ValueError(f"ModelConfig.blocks must be 4 positive ints, got {self.blocks!r}") from None
        object.__setattr__(self, "blocks", blocks)
        for name in ("num_classes", "width", "feat_dim", "heads", "embed_dim"):
            value = getattr(self, name)
            try:
                if isinstance(value, bool):
                    raise TypeError
                value = operator.index(value)  # accepts numpy ints, refuses floats
            except TypeError:
                raise ValueError(f"ModelConfig.{name} must be a positive int, got {value!r}") from None
            if value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive int, got {value!r}")
            object.__setattr__(self, name, value)
        if len(self.blocks) != 4 or any(b < 1 for b in self.blocks):
            raise ValueError(f"ModelConfig.blocks must be 4 positive block counts, got {self.blocks!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout!r}")
        object.__setattr__(self, "dropout", float(self.dropout))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (blocks as a list): safe for ``weights_only`` loads."""
        d = dataclasses.asdict(self)
        d["blocks"] = list(self.blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig keys: {unknown}")
        return cls(**d)

    @classmethod
    def from_preset(cls, name: str, num_classes: int, **overrides: Any) -> "ModelConfig":
        """``ModelConfig`` from :data:`PRESETS` ``[name]``, with optional overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(num_classes=num_classes, **{**PRESETS[name], **overrides})


class EmotionResNet(nn.Module):
    """``(B, T, feat_dim)`` features (+ optional lengths) -> ``(B, num_classes)`` logits.

    Submodules: ``encoder`` (ThinResNet34), ``pooling`` (attention),
    ``embedding`` (Linear + BatchNorm1d + ReLU), ``dropout``, ``output``
    (the final Linear; the only parameters whose names start with "output.").
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ThinResNet34(config.width, config.blocks, config.feat_dim)
        if config.input_norm:  # per-coefficient training-set statistics (fit_input_stats), saved with the weights
            self.register_buffer("in_mean", torch.zeros(config.feat_dim))
            self.register_buffer("in_std", torch.ones(config.feat_dim))
        self.pooling = MultiHeadAttentionPooling(self.encoder.out_channels, config.heads)
        self.embedding = nn.Sequential(
            nn.Linear(self.pooling.out_dim, config.embed_dim),
            nn.BatchNorm1d(config.embed_dim),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.embed_dim, config.num_classes)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Input frame counts -> number of frames the attention pooling sees."""
        return self.encoder.output_lengths(lengths)

    def embed(self, feats: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The ``embed_dim`` utterance embedding (after the FC + BN + ReLU).

        ``lengths`` (B,) are the valid frame counts of a zero-padded batch
        (1 <= length <= T); ``None`` means every frame is valid. Padded
        frames get zero attention weight. Any ``T >= 1`` works. Inputs are not
        checked here (see :meth:`check_input`).
        """
        if self.config.input_norm:
            feats = (feats - self.in_mean) / self.in_std
            if lengths is not None:  # padding stays zero, as without standardisation
                valid = lengths_to_mask(lengths.to(feats.device), feats.shape[1])
                feats = feats * valid.unsqueeze(-1).to(feats.dtype)
        x = self.encoder(feats)  # (B, C, T')
        mask = None
        if lengths is not None:
            mask = lengths_to_mask(self.encoder.output_lengths(lengths.to(feats.device)), x.shape[-1])
        pooled = self.pooling(x.transpose(1, 2), mask=mask)
        return self.embedding(pooled)

    @torch.no_grad()
    def fit_input_stats(self, feats: Iterable) -> None:
        """With ``input_norm``: standardise with the per-coefficient mean and std of these
        (T, F) training items, as the model receives them; otherwise nothing to fit (and
        ``feats`` is not read, so a generator costs nothing)."""
        if not self.config.input_norm:
            return
        mean, std = frame_statistics(feats)
        self.in_mean.copy_(mean)
        self.in_std.copy_(std)

    def check_input(self, feats: Tensor, lengths: Tensor | None = None) -> None:
        """Raise ValueError for a batch :meth:`forward` cannot score correctly.

        Kept out of ``forward`` on purpose: data-dependent checks there break ONNX
        export, TorchScript and ``torch.export``; inference code calls this first.
        """
        self.encoder.check_input(feats)
        if lengths is not None:
            lengths = torch.as_tensor(lengths)
            if lengths.dim() != 1 or lengths.shape[0] != feats.shape[0]:
                raise ValueError(f"lengths must have shape ({feats.shape[0]},), got {tuple(lengths.shape)}")
            if bool(((lengths < 1) | (lengths > feats.shape[1])).any()):
                raise ValueError(f"lengths must be in [1, {feats.shape[1]}], got {lengths.tolist()}")

    def forward(self, feats: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.output(self.dropout(self.embed(feats, lengths)))

    def replace_output(self, num_classes: int) -> None:
        """Swap in a fresh ``Linear(embed_dim, num_classes)`` (transfer learning).

        Every other parameter and buffer is untouched; ``config`` is updated.
        """
        old = self.output
        self.config = dataclasses.replace(self.config, num_classes=num_classes)
        self.output = nn.Linear(self.config.embed_dim, num_classes).to(
            device=old.weight.device, dtype=old.weight.dtype
        )


def build_model(config: ModelConfig) -> EmotionResNet:
    """A freshly initialised :class:`EmotionResNet` for ``config``."""
    return EmotionResNet(config)
