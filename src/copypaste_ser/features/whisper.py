"""Whisper's audio encoder in plain PyTorch, as a frozen frame encoder (Radford et al., 2022; MIT).

Front end (:func:`log_mel`): OpenAI's ``whisper.audio.log_mel_spectrogram`` in numpy
(whisper_mel.py, which predict uses without torch).

Encoder (:class:`WhisperEncoder`): conv(k3) + GELU, conv(k3, stride 2) + GELU, sinusoidal
positions, pre-LayerNorm transformer blocks, a final LayerNorm: ``(B, T, 80) -> (B, ceil(T/2), 512)``
for Whisper-base, one state every 20 ms. Unlike OpenAI's, it takes any length up to the 1500
positions (30 s) without padding to 30 s, and masks padding within a batch, so an utterance gets
the same states alone or in a batch. A transformer is not frame-local: a concatenation must be
encoded whole (augment/reencode.py), never pieced together from cached states.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from copypaste_ser.features.encoders import as_layers
from copypaste_ser.features.whisper_mel import HOP, N_FFT, SAMPLE_RATE, log_mel, slaney_mel_filters

__all__ = ["BASE", "HOP", "N_FFT", "SAMPLE_RATE", "WhisperDims", "WhisperEncoder", "log_mel",
           "slaney_mel_filters", "sinusoids"]


@dataclass(frozen=True)
class WhisperDims:
    """Sizes of a Whisper encoder (``base``: 80 mels, 512 wide, 8 heads, 6 blocks)."""

    n_mels: int = 80
    width: int = 512
    heads: int = 8
    blocks: int = 6
    positions: int = 1500

    def to_dict(self) -> dict:
        return asdict(self)


BASE = WhisperDims()


def sinusoids(length: int, channels: int) -> Tensor:
    """Whisper's fixed positional embedding ``(length, channels)``."""
    step = math.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-step * torch.arange(channels // 2))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class WhisperBlock(nn.Module):
    """Pre-LayerNorm self-attention + GELU MLP (4x), residual around each."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn_ln = nn.LayerNorm(width)
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width, bias=False)
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, width)
        self.mlp_ln = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: Tensor, key_mask: Tensor | None) -> Tensor:
        b, t, w = x.shape
        h = self.attn_ln(x)
        q, k, v = (proj(h).view(b, t, self.heads, w // self.heads).transpose(1, 2)
                   for proj in (self.query, self.key, self.value))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, w))
        return x + self.mlp(self.mlp_ln(x))


class WhisperEncoder(nn.Module):
    """``(B, T, n_mels)`` log-mel (+ lengths) -> hidden states; see the module docstring."""

    def __init__(self, dims: WhisperDims = BASE) -> None:
        super().__init__()
        self.dims = dims
        self.conv1 = nn.Conv1d(dims.n_mels, dims.width, 3, padding=1)
        self.conv2 = nn.Conv1d(dims.width, dims.width, 3, stride=2, padding=1)
        self.register_buffer("positions", sinusoids(dims.positions, dims.width), persistent=False)
        self.blocks = nn.ModuleList(WhisperBlock(dims.width, dims.heads) for _ in range(dims.blocks))
        self.ln_post = nn.LayerNorm(dims.width)

    @staticmethod
    def state_lengths(mel_lengths: Tensor) -> Tensor:
        """States per input: the stride-2 conv keeps ceil(T / 2) frames."""
        return (mel_lengths + 1) // 2

    def forward(self, mel: Tensor, lengths: Tensor | None = None, upto: int | None = None) -> list[Tensor]:
        """The states after the conv stem (index 0) and after each block (1..blocks, the last
        one LayerNorm-ed as Whisper's output), up to block ``upto`` (all when None)."""
        upto = self.dims.blocks if upto is None else upto
        b, t, _ = mel.shape
        if lengths is not None:  # zero the padding so the convolutions see what a lone input sees
            frame_ok = torch.arange(t, device=mel.device)[None, :] < lengths[:, None]
            mel = mel * frame_ok[..., None]
        x = F.gelu(self.conv1(mel.transpose(1, 2)))
        if lengths is not None:  # conv2 must see zeros past the end, as a lone input's padding
            x = x * frame_ok[:, None, :]
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        if x.shape[1] > self.dims.positions:
            raise ValueError(f"{x.shape[1]} states: Whisper takes at most {self.dims.positions} (30 s)")
        x = x + self.positions[: x.shape[1]]
        key_mask = None
        if lengths is not None:
            valid = torch.arange(x.shape[1], device=x.device)[None, :] < self.state_lengths(lengths)[:, None]
            key_mask = valid[:, None, None, :]
        out = [x]
        for i, block in enumerate(self.blocks[:upto]):
            x = block(x, key_mask)
            out.append(self.ln_post(x) if i == self.dims.blocks - 1 else x)
        return out

    def layer_states(self, mel: Tensor, lengths: Tensor | None = None,
                     layer: int | Sequence[int] | None = None) -> Tensor:
        """Block ``layer``'s states for inputs of any length: each 30-s window encoded on its own.
        Several blocks: their states side by side, ``(B, T, width * len(layer))``."""
        layers = as_layers(self.dims.blocks if layer is None else layer)
        window = 2 * self.dims.positions
        outs = []
        for start in range(0, max(mel.shape[1], 1), window):
            piece = mel[:, start: start + window]
            n = None if lengths is None else (lengths - start).clamp(1, piece.shape[1])
            states = self(piece, n, upto=max(layers))
            outs.append(torch.cat([states[k] for k in layers], dim=-1))
        return torch.cat(outs, dim=1)

