"""Run a model over whole utterances; rebuild a model from its self-describing file."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from copypaste_ser.errors import UserError
from copypaste_ser.features.batches import eval_batches

#: Architectures a model file may name.
ARCHS = ("thin-resnet34", "resemblyzer-lstm", "resemblyzer-attention", "whisper-attention", "ssl-attention")


@torch.no_grad()
def predict_proba(model: torch.nn.Module, feats: Sequence[np.ndarray], device: str | torch.device = "cpu",
                  max_frames: int = 20000, mean_norm: bool = True) -> np.ndarray:
    """Class probabilities (N, C) for un-normalised feature matrices (mean norm is applied
    here unless ``mean_norm`` is False: pass the run's ``FeatureConfig.mean_norm``)."""
    was_training = model.training
    model.eval()
    out: np.ndarray | None = None
    # a model that is not exact under padding (the ResNet's convolutions see the zeros) is scored
    # on batches of one length, so a score never depends on what else is in the batch
    same_length = not getattr(model, "pads_exactly", False)
    for idx, (x, lengths, _) in eval_batches(feats, [0] * len(feats), max_frames=max_frames,
                                             mean_norm=mean_norm, same_length=same_length):
        x, lengths = x.to(device), lengths.to(device)
        check = getattr(model, "check_input", None)
        if check is not None:  # the models keep validation out of forward (export), so it is here
            check(x, lengths)
        probs = torch.softmax(model(x, lengths), dim=-1).cpu().numpy()
        if out is None:
            out = np.zeros((len(feats), probs.shape[1]), dtype=np.float32)
        out[idx] = probs
    model.train(was_training)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def build_arch(arch: str | None, config: dict, source: str = "model file") -> torch.nn.Module:
    """A freshly initialised model of ``arch`` from its ``config`` dict (no weights loaded)."""
    if arch == "thin-resnet34":
        from copypaste_ser.models import ModelConfig, build_model
        return build_model(ModelConfig.from_dict(config))
    if arch == "resemblyzer-lstm":
        from copypaste_ser.models.resemblyzer import ResemblyzerConfig, ResemblyzerEmotion
        return ResemblyzerEmotion(ResemblyzerConfig.from_dict(config).num_classes, pretrained=False)
    if arch in ("resemblyzer-attention", "whisper-attention", "ssl-attention"):
        from copypaste_ser.models.encoder_head import EncoderAttentionEmotion, EncoderHeadConfig
        return EncoderAttentionEmotion(EncoderHeadConfig.from_dict(config))
    raise UserError(f"{source}: unknown architecture {arch!r} (known: {', '.join(ARCHS)})")


def model_from_file(obj: dict, source: str = "model file") -> torch.nn.Module:
    """Instantiate the architecture a model file names and load its weights."""
    spec = obj.get("model", {})
    try:
        model = build_arch(spec.get("arch"), spec.get("config", {}), source)
    except (TypeError, ValueError) as e:
        raise UserError(f"{source}: bad model config ({e})") from None
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as e:
        raise UserError(f"{source}: weights do not fit the architecture it names "
                        f"({str(e).splitlines()[0]})") from None
    model.eval()
    return model
