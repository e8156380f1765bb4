"""Self-describing model files and atomic checkpoints, all loadable with weights_only=True.

A model file is a dict of plain types and tensors::

    {"format": "copypaste-ser/1", "kind": "emotion" | "speaker",
     "model": {"arch": "thin-resnet34" | "resemblyzer-lstm", "config": ModelConfig.to_dict()},
     "labels": [...], "corpus": name, "features": FeatureConfig.to_dict(), "train": TrainConfig.to_dict(),
     "provenance": {...}, "state_dict": {...}}

A speaker model's labels are its speaker ids; provenance says where the initial weights
came from ({"init": "random"}, or init/init_kind/init_corpus/init_arch/init_sha1 of the
speaker model it was fine-tuned from, see transfer.py).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_path
from .errors import UserError

FORMAT = "copypaste-ser/1"


def save_atomic(obj: dict, path: str | Path) -> None:
    """Write to a temp file in the same folder, then rename: a crash never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: model file is missing")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or foreign files
        raise UserError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})".splitlines()[0]) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise UserError(f"{path}: not a copypaste-ser model file (no '{FORMAT}' format tag)")
    return obj


def load_model_file(path: str | Path, kind: str | None = None) -> dict:
    """Load and check a model file; ``kind`` ('emotion' or 'speaker') is enforced when given."""
    obj = load_checkpoint(path)
    if kind is not None and obj.get("kind") != kind:
        raise UserError(f"{path}: is a {obj.get('kind')!r} model, expected a {kind!r} model")
    return obj


def resolve_model_path(run_or_model: str | Path) -> Path:
    """A run directory means its best model; a file is taken as is."""
    p = Path(run_or_model)
    if p.is_dir():
        model = p / "model.pt"
        if not model.is_file():
            raise UserError(f"{p}: run has no model.pt yet (training unfinished?)")
        return model
    if not p.exists():
        raise UserError(f"{p}: no such run directory or model file")
    return p
