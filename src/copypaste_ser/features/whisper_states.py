"""Whisper encoder states as cached frame features (``FeatureConfig.kind == "whisper-states"``).

A cached row is one encoder state (20 ms): the two log-mel frames it was computed from, side by
side (``2 * n_mels`` values), then the chosen block's state (``width`` values, 512 for base).
Keeping the mel frames lets CopyPaste join two utterances' log-mel and encode the join whole
(augment/reencode.py): a transformer is not frame-local, so joined cached states would not be
what the model hears. An odd number of mel frames is padded with one frame at the utterance's
floor (silence). Inputs over 30 s are encoded in 30-s windows, each on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

from copypaste_ser.features.encoders import as_layers, length_groups
from copypaste_ser.features.whisper import BASE, WhisperDims, WhisperEncoder
from copypaste_ser.features.whisper_mel import MELS_PER_STATE, mel_rows, rows_to_mel

__all__ = ["MELS_PER_STATE", "encode_rows", "mel_rows", "rows_to_mel", "shared_whisper", "whisper_dims"]


def whisper_dims(source: str) -> WhisperDims:
    """The encoder's sizes (without loading Whisper-base's weights)."""
    return BASE if source == "base" else shared_whisper(source).dims


@lru_cache(maxsize=2)
def shared_whisper(source: str = "base") -> WhisperEncoder:
    """One frozen encoder per process and source (feature extraction and re-encoding share it)."""
    from copypaste_ser.features.whisper_weights import load_whisper
    return load_whisper(source)


@torch.no_grad()
def encode_rows(rows: Sequence[np.ndarray], layer: int | Sequence[int], source: str = "base",
                encoder: WhisperEncoder | None = None, max_states: int = 24000) -> list[np.ndarray]:
    """Block ``layer``'s states ``(T, width)`` of each ``(T, 2 * n_mels)`` row matrix, batched by
    length; several blocks: their states side by side, ``(T, width * len(layer))``."""
    encoder = encoder if encoder is not None else shared_whisper(source)
    layers = as_layers(layer)
    n_mels, window = encoder.dims.n_mels, encoder.dims.positions
    pieces: list[tuple[int, int, np.ndarray]] = []  # (item, start state, mel frames of <= 30 s)
    for i, r in enumerate(rows):
        for start in range(0, max(len(r), 1), window):
            pieces.append((i, start, rows_to_mel(r[start: start + window], n_mels)))
    out = [np.zeros((len(r), encoder.dims.width * len(layers)), np.float32) for r in rows]
    for indices in length_groups([len(mel) // MELS_PER_STATE for _, _, mel in pieces], max_states):
        group = [pieces[k] for k in indices]
        longest = max(len(mel) for _, _, mel in group)
        x = torch.zeros(len(group), max(longest, 2), n_mels)
        for row, (_, _, mel) in enumerate(group):
            x[row, : len(mel)] = torch.from_numpy(mel)
        lengths = torch.tensor([max(len(mel), 1) for _, _, mel in group])
        states = encoder.layer_states(x, lengths, layers).numpy()  # a piece is one window
        for row, (i, s, mel) in enumerate(group):
            n = len(mel) // MELS_PER_STATE
            out[i][s: s + n] = states[row, :n]
    return out
