"""Frozen pretrained frame encoders: Resemblyzer's GE2E speaker LSTM as a feature front end.

Resemblyzer 0.1.4 (PyPI, Apache-2.0) ships ``resemblyzer/pretrained.pt``: a 3-layer LSTM
(40 -> 256, trained as a speaker encoder on thousands of VoxCeleb and LibriSpeech speakers)
on 40-band mel POWER frames (25 ms / 10 ms; ``features.mel_power``). Importing the package
pulls librosa and webrtcvad, so it is never imported: ``pip install --no-deps
resemblyzer==0.1.4`` and :func:`weights_path` finds the file.

:class:`ResemblyzerStates` runs the three layers one by one and returns every layer's
output frames, concatenated: ``(B, T, 40) -> (B, T, 768)``. All three layers are kept
because emotion sits lower than speaker identity: on EmoDB-4 leave-one-speaker-out, a
mean+std logistic probe on the top layer alone scored 84.4 weighted F1, on all three
layers 87.3 (docs/results/README.md). The LSTM is causal and frame-synchronous (one state
per input frame), so the states line up with the mel frames: a concatenation of mel
pieces re-encoded here is exactly what the model would hear
(``augment.reencode.ReencodeConcatenations``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from copypaste_ser.errors import UserError

PIP = "pip install --no-deps resemblyzer==0.1.4"
MEL_DIM = 40
HIDDEN = 256
LAYERS = 3
STATES_DIM = HIDDEN * LAYERS


def weights_path() -> Path:
    """``pretrained.pt`` of the installed resemblyzer wheel (the package is not imported)."""
    spec = importlib.util.find_spec("resemblyzer")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / "pretrained.pt"
        if path.is_file():
            return path
    raise UserError(f"resemblyzer is not installed: the Resemblyzer models need its pretrained weights; run `{PIP}`")


def resemblyzer_available() -> bool:
    try:
        weights_path()
    except UserError:
        return False
    return True


@lru_cache(maxsize=1)
def weights_digest() -> str:
    """SHA-256 (12 hex digits) of the installed ``pretrained.pt``, for feature-cache keys."""
    import hashlib
    try:
        return hashlib.sha256(weights_path().read_bytes()).hexdigest()[:12]
    except UserError:
        return "not-installed"


def pretrained_state(path: str | Path | None = None) -> dict[str, Tensor]:
    """Every tensor of ``pretrained.pt`` (``lstm.*``, ``linear.*``, GE2E scalars)."""
    path = Path(path) if path is not None else weights_path()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    except Exception as e:  # corrupt or foreign file
        raise UserError(f"{path}: not a Resemblyzer weights file ({type(e).__name__}: {e})".splitlines()[0]) from None


def lstm_layer(index: int) -> nn.LSTM:
    """Layer ``index`` (0-2) of Resemblyzer's LSTM, untrained: mel (40) or the layer below (256) in."""
    return nn.LSTM(MEL_DIM if index == 0 else HIDDEN, HIDDEN, 1, batch_first=True)


class ResemblyzerStates(nn.Module):
    """``(B, T, 40)`` mel power -> ``(B, T, 768)``: the outputs of the three LSTM layers."""

    def __init__(self, pretrained: bool = True, weights: str | Path | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(lstm_layer(i) for i in range(LAYERS))
        if pretrained:
            self.load_pretrained(weights)

    def load_pretrained(self, weights: str | Path | None = None) -> None:
        state = pretrained_state(weights)
        for i, layer in enumerate(self.layers):
            # nn.LSTM names layer i's tensors *_l{i}; a one-layer LSTM calls them *_l0
            own = {name: state.get(f"lstm.{name[:-1]}{i}") for name, _ in layer.named_parameters()}
            if any(v is None for v in own.values()):
                raise UserError(f"{weights or weights_path()}: weights do not fit Resemblyzer's 3-layer LSTM")
            layer.load_state_dict(own)

    def forward(self, mel: Tensor, layers: int = LAYERS) -> Tensor:
        """The outputs of the first ``layers`` layers, concatenated: ``(B, T, 256 * layers)``."""
        # causal: padding after a frame never changes that frame's state
        outs, x = [], mel
        for layer in self.layers[:layers]:
            x, _ = layer(x)
            outs.append(x)
        return torch.cat(outs, dim=-1)


@lru_cache(maxsize=1)
def shared_encoder() -> ResemblyzerStates:
    """One frozen encoder per process (feature extraction and re-encoding share it)."""
    enc = ResemblyzerStates().eval()
    enc.requires_grad_(False)
    return enc


def as_layers(layer: int | Sequence[int]) -> tuple[int, ...]:
    """One block / layer number of a frozen encoder, or several (their states side by side), as a tuple."""
    return (int(layer),) if isinstance(layer, int | np.integer) else tuple(int(k) for k in layer)


def length_groups(lengths: Sequence[int], max_total: int) -> Iterator[list[int]]:
    """Indices sorted by length, in groups whose padded size (longest x count) stays within
    ``max_total`` (a longer item alone makes a group of one): batches of similar length."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and lengths[order[stop]] * (stop - start + 1) <= max_total:
            stop += 1
        yield order[start:stop]
        start = stop


@torch.no_grad()
def encode_arrays(mels: Sequence[np.ndarray], encoder: ResemblyzerStates | None = None,
                  max_frames: int = 40000) -> list[np.ndarray]:
    """States ``(T, 768)`` of each mel matrix ``(T, 40)``, batched by similar length."""
    encoder = encoder if encoder is not None else shared_encoder()
    out: list[np.ndarray | None] = [None] * len(mels)
    for group in length_groups([len(m) for m in mels], max_frames):
        longest = max(len(mels[i]) for i in group)
        x = torch.zeros(len(group), longest, MEL_DIM)
        for row, i in enumerate(group):
            x[row, : len(mels[i])] = torch.tensor(np.asarray(mels[i], dtype=np.float32))
        states = encoder(x).numpy()
        for row, i in enumerate(group):
            out[i] = states[row, : len(mels[i])]
    return out  # type: ignore[return-value]
