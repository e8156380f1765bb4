"""Frozen self-supervised speech encoders (wav2vec 2.0, HuBERT, WavLM) as cached frame features.

``FeatureConfig.kind == "ssl-states"``: a cached row is one encoder state (20 ms at 16 kHz):
the ``stride`` (320) waveform samples the state stands for, side by side with the chosen
layer's state (``hidden_size`` values, 768 for a base model). Keeping the samples lets
CopyPaste join two utterances' waveforms and encode the join whole (augment/reencode.py): a
transformer is not frame-local, so joined cached states would not be what the model hears.

The states are a function of the row sequence alone: its samples are joined, normalised to
zero mean and unit variance over the utterance where the model's ``preprocessor_config.json``
says ``do_normalize`` (the feature extractor's default where the file is absent), padded with
``receptive - stride`` zeros split over both ends (40 + 40 samples), so the CNN gives exactly one
state per row, centred on it. Layer 0 is ``transformers``' ``hidden_states[0]`` (the feature
projection as the transformer stack receives it), layer N the last transformer layer's output.
Utterances are batched with others of the same length only: no padding, so no state ever depends
on what else was in the batch (group-norm models such as wav2vec2-base have no exact padding mask).

Where the weights come from (``encoder_model``): a local folder saved with ``save_pretrained``
(``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``; offline, always), or a
Hugging Face hub name (``facebook/wav2vec2-base``, optionally ``@revision``) where the machine
reaches the hub. Both need ``transformers`` (``pip install 'copypaste-ser[hub]'``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from copypaste_ser.errors import UserError
from copypaste_ser.features.encoders import as_layers
from copypaste_ser.features.ssl_rows import wave_rows

#: ``config.json`` model types this module loads.
FAMILIES = ("wav2vec2", "hubert", "wavlm")
PIP = "pip install 'copypaste-ser[hub]'"
OPTION = "--encoder-model"
#: Files whose bytes identify a local folder's weights (the cache key hashes them).
WEIGHT_FILES = ("config.json", "preprocessor_config.json", "model.safetensors", "pytorch_model.bin")


@dataclass(eq=False)
class SslEncoder:
    """A frozen ``transformers`` audio encoder and what framing its input needs."""

    model: torch.nn.Module
    source: str
    family: str
    width: int            # values per state (hidden_size)
    layers: int           # transformer layers: layer 0 .. layers
    stride: int           # samples per state (320 at 16 kHz)
    receptive: int        # samples the CNN reads for one state (400)
    normalize: bool       # zero mean, unit variance per utterance (feature extractor's do_normalize)
    sample_rate: int

    @torch.no_grad()
    def states(self, waves: torch.Tensor, layer: int | Sequence[int]) -> torch.Tensor:
        """``(B, T * stride)`` samples of equal-length utterances -> ``(B, T, width)``, layer ``layer``
        (several layers: their states side by side, ``(B, T, width * len(layer))``)."""
        layers = as_layers(layer)
        for k in layers:
            check_layer(k, self.layers)
        x = waves.float().reshape(waves.shape[0], -1)
        frames = x.shape[1] // self.stride
        if self.normalize:
            x = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-7)
        left = (self.receptive - self.stride) // 2
        x = torch.nn.functional.pad(x, (left, self.receptive - self.stride - left))
        device = next(self.model.parameters()).device
        with self._upto(max(layers)):
            hidden_states = self.model(x.to(device), output_hidden_states=True).hidden_states
        hidden = torch.cat([hidden_states[k] for k in layers], dim=-1)
        out = hidden[:, :frames].to(waves.device)
        if out.shape[1] < frames:  # a CNN whose length rule differs: pad with the last state
            out = torch.cat([out, out[:, -1:].expand(-1, frames - out.shape[1], -1)], dim=1)
        return out

    @contextlib.contextmanager
    def _upto(self, layer: int) -> Iterator[None]:
        """Only the transformer layers up to ``layer`` run (plus the one whose input it is)."""
        stack = self.model.encoder.layers
        keep = min(layer + 1, len(stack))
        self.model.encoder.layers = stack[:keep]
        try:
            yield
        finally:
            self.model.encoder.layers = stack

    def to(self, device: torch.device | str) -> SslEncoder:
        self.model.to(device)
        return self


def check_layer(layer: int, layers: int, option: str = "--encoder-layer") -> None:
    if not 0 <= layer <= layers:
        raise UserError(f"{option} {layer}: this encoder has layers 0-{layers} (0 = the feature projection, "
                        f"{layers} = the last transformer layer); choose one of them")


@torch.no_grad()
def encode_rows(rows: Sequence[np.ndarray], layer: int | Sequence[int], source: str | None = None,
                encoder: SslEncoder | None = None, max_states: int = 6000) -> list[np.ndarray]:
    """Layer ``layer``'s states ``(T, width)`` of each ``(T, stride)`` row matrix (see the module
    docstring; several layers side by side); items are batched only with items of the same
    length, at most ``max_states`` a batch."""
    encoder = encoder if encoder is not None else shared_ssl(str(source))
    out = [np.zeros((len(r), encoder.width * len(as_layers(layer))), np.float32) for r in rows]
    by_length: dict[int, list[int]] = {}
    for i, r in enumerate(rows):
        if len(r):
            by_length.setdefault(len(r), []).append(i)
    for length, items in by_length.items():
        per_batch = max(1, max_states // length)
        for start in range(0, len(items), per_batch):
            group = items[start: start + per_batch]
            x = torch.from_numpy(np.stack([np.asarray(rows[i], np.float32).reshape(-1) for i in group]))
            states = encoder.states(x, layer).cpu().numpy()
            for k, i in enumerate(group):
                out[i] = states[k]
    return out


def encode_wave(wave: np.ndarray, layer: int | Sequence[int], source: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, states) of one utterance's samples: what the feature cache holds, side by side."""
    encoder = shared_ssl(source)
    rows = wave_rows(wave, encoder.stride)
    return rows, encode_rows([rows], layer, encoder=encoder)[0]


@lru_cache(maxsize=2)
def shared_ssl(source: str) -> SslEncoder:
    """One frozen encoder per process and source (feature extraction and re-encoding share it)."""
    return load_ssl(source)


def load_ssl(source: str | Path) -> SslEncoder:
    """A frozen encoder from a local ``save_pretrained`` folder or a hub name (module docstring)."""
    folder = model_folder(str(source))
    config = _read_json(folder / "config.json", source)
    family = config.get("model_type")
    if family not in FAMILIES:
        hint = "; use --init whisper-attention for Whisper" if family == "whisper" else ""
        raise UserError(f"{OPTION} {source}: not a supported audio encoder (model_type {family!r}; supported: "
                        f"{', '.join(FAMILIES)}){hint}")
    if not any((folder / name).is_file() for name in WEIGHT_FILES[2:]):
        raise UserError(f"{OPTION} {source}: has config.json but no model.safetensors or pytorch_model.bin; "
                        f"save the model with save_pretrained")
    transformers = _transformers()
    try:
        model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:
        raise UserError(f"{OPTION} {source}: transformers could not load it ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); save it again with save_pretrained") from None
    pre = _read_json(folder / "preprocessor_config.json", source) if (folder / "preprocessor_config.json").is_file() else {}
    kernel, stride = list(config.get("conv_kernel", [])), list(config.get("conv_stride", []))
    receptive, step = 1, 1
    for k, s in zip(kernel, stride):
        receptive, step = receptive + (k - 1) * step, step * s
    model.eval().requires_grad_(False)
    return SslEncoder(model=model, source=str(source), family=family, width=int(config["hidden_size"]),
                      layers=int(config["num_hidden_layers"]), stride=step, receptive=receptive,
                      normalize=bool(pre.get("do_normalize", True)), sample_rate=int(pre.get("sampling_rate", 16000)))


def model_folder(source: str) -> Path:
    """The local folder holding the model: the path given, or the hub snapshot of a hub name."""
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"{OPTION} {source}: no config.json there, so not a model saved with save_pretrained; "
                            f"give such a folder or a hub name such as facebook/wav2vec2-base")
        return path
    if path.exists() or source.count("/") != 1 or source.startswith((".", "/", "~")):
        raise UserError(f"{OPTION} {source}: no model folder there; give a folder saved with save_pretrained, "
                        f"or a hub name such as facebook/wav2vec2-base")
    name, _, revision = source.partition("@")
    return _hub_folder(name, revision or None)


@lru_cache(maxsize=8)
def _hub_folder(name: str, revision: str | None) -> Path:
    _transformers()
    from huggingface_hub import snapshot_download
    try:
        return Path(snapshot_download(name, revision=revision, allow_patterns=list(WEIGHT_FILES)))
    except Exception as e:
        raise UserError(f"{OPTION} {name}: could not get it from the Hugging Face hub ({type(e).__name__}); "
                        f"download it where you have internet (save_pretrained) and give its folder") from None


def _transformers():
    try:
        import transformers
    except ImportError:
        raise UserError(f"{OPTION}: wav2vec2 / HuBERT / WavLM encoders need transformers: {PIP}") from None
    return transformers


def _read_json(path: Path, source: str | Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{OPTION} {source}: {path.name} is not readable JSON ({type(e).__name__}); "
                        f"save the model again with save_pretrained") from None
    if not isinstance(data, dict):
        raise UserError(f"{OPTION} {source}: {path.name} is not a JSON mapping; save the model again")
    return data


def weights_id(source: str) -> str:
    """What identifies the weights in a cache key: the SHA-256 of a local folder's weight and
    config files, or ``hub name@commit`` of the hub snapshot used."""
    path = Path(source).expanduser()
    if path.is_dir():
        files = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in
                      (path / n for n in WEIGHT_FILES) if p.is_file())
        return "sha256:" + _folder_digest(str(path.resolve()), files)
    folder = model_folder(source)
    return f"{source.partition('@')[0]}@{folder.name}"


@lru_cache(maxsize=16)
def _folder_digest(folder: str, files: tuple) -> str:
    """SHA-256 over the named files' bytes (cached per path, size and mtime: hashed once a process)."""
    h = hashlib.sha256()
    for name, _, _ in files:
        h.update(name.encode())
        with open(Path(folder) / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()
