"""Emotion from a frozen pretrained speaker encoder: Resemblyzer states + the paper's pooling head.

The paper's central finding is that a speaker model is a far better start for emotion than
random weights; the one large speaker model we can use offline is Resemblyzer's GE2E LSTM
(encoders.py). :class:`EncoderAttentionEmotion`::

    (B, T, 808) = mel power (40) | cached LSTM states of all three layers (768)
      -> states, standardised with the training set's per-dimension mean and std
      -> dropout -> Linear(768, 128)                 (the paper pools 128-dim ResNet frames)
      -> 32-head attention pooling (eq. 1-2) -> (32 x 128)      or mean+std pooling
      -> FC 400 + ReLU -> dropout -> FC #classes

The encoder is frozen by default and not part of this module's weights: its states come
from the feature cache (``FeatureConfig.kind == "resemblyzer-states"``), and from
``augment.reencode`` for CopyPaste concatenations, which re-encodes the concatenated mel
frames so a concatenation is exactly what the model would hear. A (B, T, 40) mel input is
encoded here (predict, export), so both input forms give the same logits.

The same head reads one block of a frozen Whisper encoder (``encoder="whisper"``, rows of two
log-mel frames + a state) or one layer of a frozen wav2vec 2.0 / HuBERT / WavLM encoder
(``encoder="ssl"``, rows of 320 waveform samples + a state; features/ssl_encoders.py).
With ``layer_mix`` it reads the states of every block / layer from 0 up to the chosen one,
standardises each and learns a softmax-weighted sum of them (:class:`LayerMix`) before the
projection: which depth carries emotion is then learned, not chosen.

``tuned_layers=k`` fine-tunes the top k LSTM layers: they are copies of the pretrained layers
owned by this module (``tuned.*``, trained at ``encoder_lr_scale`` of the head's rate), run on
the cached output of the highest frozen layer, so the cache still serves every frozen layer.
For Whisper, the top k blocks up to ``whisper_layer`` (models/whisper_tuned.py), run on the
cached states of block ``whisper_layer - k``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from copypaste_ser.features.encoders import (
    HIDDEN,
    LAYERS,
    MEL_DIM,
    STATES_DIM,
    lstm_layer,
    shared_encoder,
)
from copypaste_ser.features.mfcc import kept_layers
from copypaste_ser.models.pooling import MultiHeadAttentionPooling, lengths_to_mask
from copypaste_ser.models.standardise import frame_statistics

ARCH = "resemblyzer-attention"
WHISPER_ARCH = "whisper-attention"
SSL_ARCH = "ssl-attention"
POOLINGS = ("attention", "meanstd")
ENCODERS = ("resemblyzer", "whisper", "ssl")


@dataclass(frozen=True, kw_only=True)
class EncoderHeadConfig:
    num_classes: int
    pooling: str = "attention"
    proj_dim: int = 128
    heads: int = 32
    embed_dim: int = 400
    dropout: float = 0.2
    input_dim: int = MEL_DIM + STATES_DIM
    tuned_layers: int = 0  # top LSTM layers (Whisper: blocks up to whisper_layer) trained with the head
    encoder: str = "resemblyzer"  # or "whisper": rows of 2 log-mel frames + one block's states
    whisper_model: str = "base"
    whisper_layer: int = 3
    whisper_width: int = 512
    whisper_heads: int = 8        # tuned blocks: the encoder's attention heads and block count
    whisper_blocks: int = 6
    ssl_model: str | None = None  # encoder "ssl": a local save_pretrained folder or a hub name
    ssl_layer: int = 0            # encoder "ssl": the layer whose states the head reads
    ssl_width: int = 0            # encoder "ssl": values per state (hidden_size)
    layer_mix: bool = False       # whisper / ssl: read blocks 0..layer and learn a softmax-weighted sum of them

    @property
    def mel_dim(self) -> int:
        """Raw input values per frame (before the states); 2 x 80 log-mel for Whisper, 320 samples for ssl."""
        return self.input_dim - self.states_dim

    @property
    def layers(self) -> tuple[int, ...]:
        """The encoder blocks / layers whose states the head reads (Whisper or ssl)."""
        return kept_layers(self.whisper_layer if self.encoder == "whisper" else self.ssl_layer, self.layer_mix)

    @property
    def input_layers(self) -> tuple[int, ...]:
        """The blocks / layers whose states come in (cached or encoded frozen): below the tuned blocks."""
        if self.encoder != "whisper" or not self.tuned_layers:
            return self.layers
        return (self.whisper_layer - self.tuned_layers,)

    @property
    def state_width(self) -> int:
        """Values per state of one layer (what the head's projection takes)."""
        return {"whisper": self.whisper_width, "ssl": self.ssl_width}.get(self.encoder, STATES_DIM)

    @property
    def states_dim(self) -> int:
        """Values per row after the raw input: one state, or one per mixed layer."""
        return self.state_width * (len(self.layers) if self.encoder != "resemblyzer" else 1)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EncoderHeadConfig:
        cfg = cls(**d)
        if cfg.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {cfg.pooling!r}")
        top = cfg.whisper_layer if cfg.encoder == "whisper" else LAYERS
        if not 0 <= cfg.tuned_layers <= top:
            raise ValueError(f"tuned_layers must be 0-{top}, got {cfg.tuned_layers!r}")
        if cfg.encoder not in ENCODERS or (cfg.encoder == "ssl" and cfg.tuned_layers):
            raise ValueError(f"encoder must be one of {ENCODERS} (tuned layers: not ssl), got {cfg.encoder!r}")
        if cfg.layer_mix and cfg.tuned_layers:
            raise ValueError("layer_mix with tuned_layers: the mix reads frozen blocks; use one or the other")
        if cfg.layer_mix and cfg.encoder == "resemblyzer":
            raise ValueError("layer_mix: Whisper and ssl encoders only (the Resemblyzer head reads all three layers)")
        return cfg


class EncoderAttentionEmotion(nn.Module):
    """``(B, T, 808)`` or ``(B, T, 40)`` frames (+ lengths) -> ``(B, num_classes)`` logits."""

    #: padding after an utterance never changes its logits (causal LSTM or masked attention)
    pads_exactly = True

    #: parameters trained at ``encoder_lr_scale`` of the head's rate (model_setup.make_optimizer)
    encoder_prefixes = ("tuned.", "tuned_whisper.")

    def __init__(self, config: EncoderHeadConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.arch = {"whisper": WHISPER_ARCH, "ssl": SSL_ARCH}.get(c.encoder, ARCH)
        STATES_DIM = c.states_dim  # noqa: N806 (the encoder's, shadowing Resemblyzer's)
        lstm = c.encoder == "resemblyzer"
        self.frozen_layers = LAYERS - c.tuned_layers if lstm else LAYERS
        self.tuned = nn.ModuleList(lstm_layer(i) for i in range(self.frozen_layers, LAYERS))
        self.tuned_whisper = None
        if c.encoder == "whisper" and c.tuned_layers:
            from copypaste_ser.models.whisper_tuned import TunedWhisperBlocks
            self.tuned_whisper = TunedWhisperBlocks(c.whisper_width, c.whisper_heads, c.tuned_layers,
                                                    ends_encoder=c.whisper_layer == c.whisper_blocks)
        # per-dimension statistics of the training states (fit_input_stats); saved with the weights
        self.register_buffer("in_mean", torch.zeros(STATES_DIM))
        self.register_buffer("in_std", torch.ones(STATES_DIM))
        self.dropout = nn.Dropout(c.dropout)
        self.mix = LayerMix(len(c.layers)) if c.layer_mix else None
        width = c.state_width if c.layer_mix else STATES_DIM
        if c.pooling == "attention":
            self.proj = nn.Linear(width, c.proj_dim)
            self.pool = MultiHeadAttentionPooling(c.proj_dim, c.heads)
            pooled = self.pool.out_dim
        else:
            self.proj = nn.Identity()
            self.pool = None
            pooled = 2 * width
        self.embedding = nn.Sequential(nn.Linear(pooled, c.embed_dim), nn.ReLU(), nn.Dropout(c.dropout))
        self.output = nn.Linear(c.embed_dim, c.num_classes)

    @torch.no_grad()
    def fit_input_stats(self, feats: Iterable) -> None:
        """Standardise with the mean and std of the states of these (T, 808) training items (tuned
        Whisper blocks: of the states they give before training, the pretrained block's)."""
        states = (np.asarray(f)[:, self.config.mel_dim:] for f in feats)
        if self.tuned_whisper is not None:
            states = (self.tuned_whisper(torch.from_numpy(np.ascontiguousarray(s, np.float32))[None])[0].numpy()
                      for s in states)
        mean, std = frame_statistics(states)
        self.in_mean.copy_(mean)
        self.in_std.copy_(std)

    def load_tuned_layers(self, encoder: Any) -> None:
        """Start the tuned layers (Whisper: blocks) from the encoder's pretrained weights of the same ones."""
        if self.tuned_whisper is not None:
            self.tuned_whisper.load_from(encoder, self.config.whisper_layer - self.config.tuned_layers)
            return
        for layer, source in zip(self.tuned, encoder.layers[self.frozen_layers:]):
            layer.load_state_dict(source.state_dict())

    def states(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, T, 768)``: the frozen layers' states (cached, or encoded here from raw mel, the
        same states), then the tuned layers run on the highest frozen layer's output."""
        if self.config.encoder == "whisper":
            return self.whisper_states(x, lengths)
        if self.config.encoder == "ssl":
            return self.ssl_states(x, lengths)
        k = self.frozen_layers
        if x.shape[-1] == MEL_DIM:
            mel = x
            with torch.no_grad():
                frozen = shared_encoder().to(x.device)(x, layers=k) if k else x[..., :0]
        else:
            mel, frozen = x[..., :MEL_DIM], x[..., MEL_DIM: MEL_DIM + HIDDEN * k]
        outs, h = [frozen], frozen[..., -HIDDEN:] if k else mel
        for layer in self.tuned:
            h, _ = layer(h)  # causal: padding after a frame never changes that frame's state
            outs.append(h)
        return torch.cat(outs, dim=-1) if self.tuned else frozen

    def whisper_states(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, T, width)``: cached states, or encoded here from rows of raw log-mel (predict);
        then the tuned blocks, if any."""
        c = self.config
        if x.shape[-1] != c.mel_dim:
            h = x[..., c.mel_dim:]
        else:
            from copypaste_ser.features.whisper_states import shared_whisper
            encoder = shared_whisper(c.whisper_model).to(x.device)
            with torch.no_grad():  # rows (B, T, 2 * n_mels) -> mel (B, 2T, n_mels), padding masked
                mel = x.reshape(x.shape[0], -1, c.mel_dim // 2)
                mel_lengths = None if lengths is None else lengths.to(x.device) * 2
                h = encoder.layer_states(mel, mel_lengths, c.input_layers)
        return h if self.tuned_whisper is None else self.tuned_whisper(h, lengths)

    def ssl_states(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, T, width)``: cached states, or encoded here from waveform rows (predict). Each
        item is encoded without padding (ssl_encoders.encode_rows), so a state never depends on
        the batch; an export traces one call over the batch, as the engines batch these models
        by length (engines.PAD_EXACT)."""
        c = self.config
        if x.shape[-1] != c.mel_dim:
            return x[..., c.mel_dim:]
        from copypaste_ser.features import ssl_encoders
        encoder = ssl_encoders.shared_ssl(str(c.ssl_model)).to(x.device)
        if lengths is None or torch.jit.is_tracing():  # every item is whole
            return encoder.states(x.reshape(x.shape[0], -1), c.layers).to(x.dtype)
        rows = [r[:n].cpu().numpy() for r, n in zip(x, lengths.tolist())]
        out = x.new_zeros(x.shape[0], x.shape[1], c.states_dim)
        for i, states in enumerate(ssl_encoders.encode_rows(rows, c.layers, encoder=encoder)):
            out[i, : len(states)] = torch.from_numpy(states).to(out)
        return out

    def embed(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        h = (self.states(x, lengths) - self.in_mean) / self.in_std
        if self.mix is not None:  # each layer standardised on its own, then weighted
            h = self.mix(h)
        h = self.proj(self.dropout(h))
        if lengths is None:
            lengths = torch.full((h.shape[0],), h.shape[1], device=h.device)
        lengths = lengths.to(h.device)
        if self.pool is not None:
            pooled = self.pool(h, lengths)
        else:
            mask = lengths_to_mask(lengths, h.shape[1]).unsqueeze(-1).to(h.dtype)
            n = lengths.clamp_min(1).unsqueeze(-1).to(h.dtype)
            mean = (h * mask).sum(1) / n
            var = (((h - mean.unsqueeze(1)) * mask) ** 2).sum(1) / n
            pooled = torch.cat([mean, var.clamp_min(1e-8).sqrt()], dim=-1)
        return self.embedding(pooled)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.output(self.embed(x, lengths))

    def replace_output(self, num_classes: int) -> None:
        self.config = dataclasses.replace(self.config, num_classes=num_classes)
        self.output = nn.Linear(self.config.embed_dim, num_classes)


class LayerMix(nn.Module):
    """``(B, T, k * W)`` states of k layers side by side -> ``(B, T, W)``: their sum weighted by a
    softmax over k learned scalars (the weighted sum of SUPERB; Yang et al., 2021), starting equal."""

    def __init__(self, layers: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(layers))

    def weights(self) -> Tensor:
        return torch.softmax(self.logits, dim=0)

    def forward(self, h: Tensor) -> Tensor:
        # sizes read from h.shape: an ONNX trace keeps batch and time dynamic (unflatten would fix them)
        per_layer = h.view(h.shape[0], h.shape[1], self.logits.shape[0], -1)
        return (per_layer * self.weights()[:, None]).sum(-2)
