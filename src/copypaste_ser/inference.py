"""Run a model over whole utterances; rebuild a model from its self-describing file."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .data import eval_batches
from .errors import UserError


@torch.no_grad()
def predict_proba(model: torch.nn.Module, feats: Sequence[np.ndarray], device: str | torch.device = "cpu",
                  max_frames: int = 20000) -> np.ndarray:
    """Class probabilities (N, C) for un-normalised feature matrices (mean norm is applied here)."""
    was_training = model.training
    model.eval()
    out: np.ndarray | None = None
    for idx, (x, lengths, _) in eval_batches(feats, [0] * len(feats), max_frames=max_frames):
        probs = torch.softmax(model(x.to(device), lengths.to(device)), dim=-1).cpu().numpy()
        if out is None:
            out = np.zeros((len(feats), probs.shape[1]), dtype=np.float32)
        out[idx] = probs
    model.train(was_training)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def model_from_file(obj: dict, source: str = "model file") -> torch.nn.Module:
    """Instantiate the architecture a model file names and load its weights."""
    from .models import ModelConfig, build_model

    arch = obj.get("model", {}).get("arch")
    if arch != "thin-resnet34":
        raise UserError(f"{source}: unknown architecture {arch!r}")
    model = build_model(ModelConfig.from_dict(obj["model"]["config"]))
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as e:
        raise UserError(f"{source}: weights do not fit the architecture it names "
                        f"({str(e).splitlines()[0]})") from None
    model.eval()
    return model
