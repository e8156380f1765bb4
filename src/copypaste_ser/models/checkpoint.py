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


from copypaste_ser.errors import UserError
from copypaste_ser.files.atomic import atomic_path

FORMAT = "copypaste-ser/1"


def save_atomic(obj: dict, path: str | Path) -> None:
    """Write to a temp file in the same folder, then rename: a crash never leaves half a file."""
    import torch

    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:  # torch reports a failed write as "unexpected pos" or "failed writing"
            if "pos" not in str(e) and "writ" not in str(e):
                raise
            raise UserError(f"{path}: cannot write it (the disk is full or the file-size limit is reached); "
                            f"free some space and run the command again (a run resumes)") from None


def load_checkpoint(path: str | Path) -> dict:
    import torch

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


def content_checksum(obj: dict) -> str:
    """SHA-256 of a model's label list and weights (names, dtypes, shapes, bytes), so a file
    whose weights or labels were changed after it was written is recognised."""
    import hashlib
    import json

    import torch

    digest = hashlib.sha256(json.dumps(list(obj.get("labels") or [])).encode())
    for name in sorted(obj["state_dict"]):
        t = obj["state_dict"][name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def with_checksum(obj: dict) -> dict:
    return {**obj, "checksum": content_checksum(obj)}


def check_model_content(obj: dict, source: str) -> dict:
    """Refuse, in one line, a model file that cannot give honest answers: no weights, a label
    list that is not unique names or does not match the output layer, NaN or infinite
    weights, or weights and labels that differ from the checksum written with them."""
    import torch

    state = obj.get("state_dict")
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{source}: holds no weights (state_dict); give a model.pt written by train")
    labels = obj.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels) \
            or len(set(labels)) != len(labels):
        raise UserError(f"{source}: its label list {labels!r} is not a list of distinct names; the file is damaged")
    outputs = ((obj.get("model") or {}).get("config") or {}).get("num_classes")
    if obj.get("kind") == "emotion" and isinstance(outputs, int) and outputs != len(labels):
        raise UserError(f"{source}: names {len(labels)} labels but its output layer has {outputs}; "
                        f"the file is damaged or was edited")
    bad = next((k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise UserError(f"{source}: weights {bad!r} hold NaN or infinite values; the file is damaged, "
                        f"train or download it again")
    if "checksum" in obj and obj["checksum"] != content_checksum(obj):
        raise UserError(f"{source}: weights or labels differ from the checksum written with them; the file "
                        f"was changed or damaged; train or download it again")
    return obj


def load_model_file(path: str | Path, kind: str | None = None) -> dict:
    """Load and check a model file; ``kind`` ('emotion' or 'speaker') is enforced when given."""
    obj = load_checkpoint(path)
    if kind is not None and obj.get("kind") != kind:
        raise UserError(f"{path}: holds a model of kind {obj.get('kind')!r}; this needs one of kind {kind!r}")
    return check_model_content(obj, str(path))


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
