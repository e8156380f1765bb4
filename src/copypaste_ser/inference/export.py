"""``copypaste-ser export RUN --onnx model.onnx``: the model as ONNX, for onnxruntime.

Inputs ``feats`` (batch, frames, F) float32, normalised as for training (stream.window_frames)
and ``lengths`` (batch,) int64; output ``logits`` (batch, classes). Batch and time axes are
dynamic. The Resemblyzer-states model takes mel frames (F = 40) and carries the frozen
encoder in the graph. The model file's description (labels, features, arch) is stored in
the ONNX metadata, so ``predict model.onnx file.wav`` needs nothing else.

The TorchScript-based exporter (``dynamo=False``) is used: it needs no onnxscript, and the
models keep their input checks out of ``forward`` (``check_input``), so the trace holds no
data-dependent branch.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from copypaste_ser.errors import UserError
from copypaste_ser.files.atomic import atomic_path
from copypaste_ser.files.outputs import tool_wrote
from copypaste_ser.inference.engines import META_KEY, Bundle, load_bundle

OPSET = 17


def check_onnx_output(out: Path, force: bool) -> None:
    """Where ``--onnx`` may write: a ``.onnx`` file name in a folder; an existing file only with
    ``force``, and then only the tool's own (an export of copypaste-ser), never a user's file."""
    if out.suffix != ".onnx":
        raise UserError(f"--onnx: {out}: the file name must end in .onnx")
    if out.is_dir():
        raise UserError(f"--onnx: {out}: is a folder; --onnx names the file to write; choose another --onnx")
    if out.parent.exists() and not out.parent.is_dir():
        raise UserError(f"--onnx: {out.parent}: is a file, not a folder; choose another --onnx")
    if out.exists() and not force:
        raise UserError(f"--onnx: {out} already exists; pass --force to replace it")
    if out.exists() and not (tool_wrote(out) or _is_export(out) or _model_folder_onnx(out)):
        raise UserError(f"--onnx: {out} exists and is not an ONNX export of copypaste-ser; --force replaces "
                        f"only the tool's own files; choose another --onnx")


def _is_export(path: Path) -> bool:
    """Whether ``path`` is an ONNX file this module wrote (it carries the model description)."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception:  # not ONNX at all: a user's file
        return False
    return any(p.key == META_KEY for p in graph.metadata_props)


def _model_folder_onnx(path: Path) -> bool:
    """Whether ``path`` is the ONNX export slot of a model folder (the tool's format, even if damaged)."""
    from copypaste_ser.inference.pretrained import ONNX, is_model_dir

    return path.name == ONNX and is_model_dir(path.parent)


def export_onnx(source: str | Path | None | Bundle, out: str | Path, force: bool = False) -> Path:
    """Write the model of ``source`` (run, model.pt, model folder, None = default) to ``out``;
    an existing ``out`` is replaced only with ``force``, and only where it is the tool's own
    (:func:`check_onnx_output`)."""
    import onnx

    out = Path(out)
    check_onnx_output(out, force)  # before the model is read
    bundle = source if isinstance(source, Bundle) else load_bundle(source, with_onnx=False)
    if bundle.model is None:
        raise UserError(f"{bundle.source}: already an ONNX model")
    model = bundle.model.cpu().eval()
    # two items of different lengths: the trace must not bake in a batch size or a length
    x = torch.rand(2, 64, bundle.input_dim)
    lengths = torch.tensor([64, 40])
    with torch.no_grad():  # one eager call first: lazily built parts (the shared frozen
        model(x, lengths)   # encoder) must not be built, random init and all, inside the trace
    with atomic_path(out) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
            torch.onnx.export(model, (x, lengths), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=["feats", "lengths"], output_names=["logits"],
                              dynamic_axes={"feats": {0: "batch", 1: "frames"}, "lengths": {0: "batch"},
                                            "logits": {0: "batch"}})
        graph = onnx.load(str(tmp))
        entry = graph.metadata_props.add()
        entry.key, entry.value = META_KEY, json.dumps({**bundle.meta, "exported_from": bundle.source},
                                                      default=str)
        onnx.save(graph, str(tmp))
    return out
