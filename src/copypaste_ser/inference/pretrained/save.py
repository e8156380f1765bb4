"""Writing the shipped model format (see pretrained/__init__.py) from a trained run.

Kept apart from the format itself: saving exports ONNX (export.py), and export.py loads
models through engines.py, which reads the format; nothing the format needs imports this.
"""

from __future__ import annotations

import json
from pathlib import Path

from copypaste_ser.files.atomic import atomic_write_text
from copypaste_ser.inference.export import export_onnx
from copypaste_ser.inference.pretrained import CARD, META, ONNX, WEIGHTS
from copypaste_ser.models.checkpoint import FORMAT, load_model_file, resolve_model_path


def save_default(run_dir_or_model_pt: str | Path, out_dir: str | Path, card: str | None = None,
                 onnx: bool = True, temperature: float = 1.0, min_confidence: float = 0.0) -> Path:
    """Write a run's (or a ``model.pt``'s) emotion model to ``out_dir`` in the shipped format.

    ``card`` is the model card's Markdown; without one a card listing what the model file
    knows is written, with the sections a person must fill in marked TODO. With ``onnx``,
    ``model.onnx`` is written too (``predict``'s default engine then uses onnxruntime,
    several times faster on CPU; it holds the frozen encoder's weights as well).
    ``temperature`` (evaluation/calibration.py) and ``min_confidence`` go into model.json, where
    ``predict`` reads them.
    """
    from safetensors.torch import save_file

    src = resolve_model_path(run_dir_or_model_pt)
    obj = load_model_file(src, kind="emotion")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared or non-contiguous storage: one contiguous copy per tensor
    state = {k: v.detach().cpu().contiguous().clone() for k, v in obj["state_dict"].items()}
    save_file(state, str(out / WEIGHTS), metadata={"format": FORMAT})
    meta = {k: v for k, v in obj.items() if k != "state_dict"}
    meta["source"] = str(src)
    meta.update({"temperature": float(temperature), "min_confidence": float(min_confidence)})
    atomic_write_text(out / META, json.dumps(meta, indent=1, default=str) + "\n")
    atomic_write_text(out / CARD, card if card is not None else _card(meta))
    if onnx:
        export_onnx(out, out / ONNX, force=True)  # the weights beside it were just replaced
    elif (out / ONNX).exists():  # an export of other weights must not be left beside these
        (out / ONNX).unlink()
    return out


def _card(meta: dict) -> str:
    model, feats = meta.get("model", {}), meta.get("features", {})
    prov = meta.get("provenance", {})
    return f"""# Model card: copypaste-ser emotion model

- Architecture: `{model.get('arch')}` ({json.dumps(model.get('config', {}))})
- Classes: {', '.join(meta.get('labels', []))}
- Features: `{feats.get('kind')}`, {feats.get('sample_rate')} Hz, energy VAD {'on' if feats.get('vad') else 'off'}
- Trained on: corpus `{meta.get('corpus')}`; provenance {json.dumps(prov)}
- Converted from: `{meta.get('source')}`

## Data and licence
TODO: corpora, speakers and their licences (research / non-commercial corpora make the weights
research / non-commercial too).

## Scores
TODO: speaker-independent scores (weighted F1, UAR) and how they were measured.

## Known limits
TODO: languages, acted vs natural speech, noise, what the classes do not cover.
"""
