"""Resemblyzer's pretrained speaker encoder (GE2E LSTM) with an emotion output layer.

Resemblyzer 0.1.4 (PyPI, Apache-2.0) ships ``resemblyzer/pretrained.pt``: a 3-layer LSTM
(40 -> 256) and a Linear 256 -> 256 + ReLU, trained as a speaker encoder on 40-band mel
POWER spectrograms (25 ms / 10 ms, 16 kHz; ``features.resemblyzer_features``). Importing
the package pulls librosa and webrtcvad, so it is never imported: install it with
``pip install --no-deps resemblyzer==0.1.4`` and :func:`weights_path` finds the file.

:class:`ResemblyzerEmotion`::

    (B, T, 40) mel power -> LSTM (pretrained) -> mean of the output frames over the valid
    frames (``lengths``) -> ``embedding`` = Linear(256, 256) + ReLU (pretrained)
    -> ``output`` = Linear(256, num_classes) (new)

Pooling is the mean over valid frames, not the paper's attention: Resemblyzer itself
averages (its utterance embedding is the mean of 1.6 s partial embeddings), and a plain
mean adds no untrained parameters between the pretrained layers. Unlike Resemblyzer, the
embedding is not L2-normalised: the new output layer sees the ReLU output as it is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from copypaste_ser.errors import UserError
from copypaste_ser.features.encoders import PIP, weights_path
from copypaste_ser.features.encoders import pretrained_state as encoder_weights
from copypaste_ser.models.pooling import lengths_to_mask

ARCH = "resemblyzer-lstm"
#: pretrained.pt key -> this module's key (the GE2E loss scalars similarity_weight/bias are dropped).
KEY_PREFIXES = {"lstm.": "lstm.", "linear.": "embedding.0."}


@dataclass(frozen=True, kw_only=True)
class ResemblyzerConfig:
    """Everything needed to rebuild a :class:`ResemblyzerEmotion`; only num_classes varies."""

    num_classes: int
    feat_dim: int = 40
    hidden: int = 256
    layers: int = 3
    embed_dim: int = 256

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResemblyzerConfig:
        cfg = cls(**d)
        if (cfg.feat_dim, cfg.hidden, cfg.layers, cfg.embed_dim) != (40, 256, 3, 256):
            raise ValueError(f"resemblyzer-lstm has fixed sizes 40/256/3/256, got {d}")
        return cfg


def pretrained_state(path: str | Path | None = None) -> dict[str, Tensor]:
    """The encoder weights of ``pretrained.pt`` under this module's parameter names."""
    state = encoder_weights(path)
    out = {}
    for key, value in state.items():
        for old, new in KEY_PREFIXES.items():
            if key.startswith(old):
                out[new + key[len(old):]] = value
    return out


class ResemblyzerEmotion(nn.Module):
    """``(B, T, 40)`` mel power (+ lengths) -> ``(B, num_classes)`` logits; see the module doc."""

    #: padding after an utterance never changes its logits (causal LSTM or masked attention)
    pads_exactly = True

    arch = ARCH

    def __init__(self, num_classes: int, pretrained: bool = True, weights: str | Path | None = None) -> None:
        super().__init__()
        self.config = ResemblyzerConfig(num_classes=num_classes)
        c = self.config
        self.lstm = nn.LSTM(c.feat_dim, c.hidden, c.layers, batch_first=True)
        self.embedding = nn.Sequential(nn.Linear(c.hidden, c.embed_dim), nn.ReLU())
        self.output = nn.Linear(c.embed_dim, num_classes)
        if pretrained:
            self.load_pretrained(weights)

    def load_pretrained(self, weights: str | Path | None = None) -> None:
        """Load every encoder weight of Resemblyzer's ``pretrained.pt``; ``output`` stays new."""
        missing, unexpected = self.load_state_dict(pretrained_state(weights), strict=False)
        missing = [k for k in missing if not k.startswith("output.")]
        if missing or unexpected:
            raise UserError(f"{weights or weights_path()}: weights do not fit resemblyzer-lstm "
                            f"(missing {missing[:3]}, unexpected {unexpected[:3]})")

    def embed(self, feats: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The 256-dim utterance embedding (mean of the LSTM outputs over valid frames, Linear, ReLU)."""
        if feats.dim() != 3 or feats.shape[-1] != self.config.feat_dim:
            raise ValueError(f"expected (batch, frames, {self.config.feat_dim}), got {tuple(feats.shape)}")
        frames, _ = self.lstm(feats)  # unidirectional: padding after a frame does not change it
        if lengths is None:
            pooled = frames.mean(dim=1)
        else:
            lengths = torch.as_tensor(lengths, device=feats.device)
            mask = lengths_to_mask(lengths, frames.shape[1]).unsqueeze(-1)
            pooled = (frames * mask).sum(dim=1) / lengths.clamp_min(1).unsqueeze(-1).to(frames.dtype)
        return self.embedding(pooled)

    def forward(self, feats: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.output(self.embed(feats, lengths))

    def replace_output(self, num_classes: int) -> None:
        """A fresh ``Linear(256, num_classes)``; every other parameter is kept."""
        old = self.output
        self.config = dataclasses.replace(self.config, num_classes=num_classes)
        self.output = nn.Linear(self.config.embed_dim, num_classes).to(device=old.weight.device,
                                                                       dtype=old.weight.dtype)
