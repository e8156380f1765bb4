"""The model shipped inside the package, and the format it ships in.

``pretrained/default/`` holds::

    model.safetensors   the weights (state dict; no pickle, safe to load)
    model.json          format, kind, model {arch, config}, labels, features, provenance
    MODEL_CARD.md       data, classes, licence, scores, known limits

so ``copypaste-ser predict recording.wav`` works with no run folder. :func:`save_default`
converts a trained run's ``model.pt`` to this format; :func:`load_model_dir` reads it back
into the same dict as ``checkpoint.load_model_file`` (``state_dict`` included).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..checkpoint import FORMAT, load_model_file, resolve_model_path
from ..errors import UserError
from ..manifest import atomic_write_text

#: Where the shipped default model lives (package data, see pyproject.toml).
DEFAULT_DIR = Path(__file__).resolve().parent / "default"
WEIGHTS, META, CARD, ONNX = "model.safetensors", "model.json", "MODEL_CARD.md", "model.onnx"


def save_default(run_dir_or_model_pt: str | Path, out_dir: str | Path,
                 card: str | None = None, onnx: bool = True) -> Path:
    """Write a run's (or a ``model.pt``'s) emotion model to ``out_dir`` in the shipped format.

    ``card`` is the model card's Markdown; without one a card listing what the model file
    knows is written, with the sections a person must fill in marked TODO. With ``onnx``,
    ``model.onnx`` is written too (``predict``'s default engine then uses onnxruntime,
    several times faster on CPU; it holds the frozen encoder's weights as well).
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
    atomic_write_text(out / META, json.dumps(meta, indent=1, default=str) + "\n")
    atomic_write_text(out / CARD, card if card is not None else _card(meta))
    if onnx:
        from ..export import export_onnx
        export_onnx(out, out / ONNX)
    elif (out / ONNX).exists():  # an export of other weights must not be left beside these
        (out / ONNX).unlink()
    return out


def load_model_dir(folder: str | Path) -> dict:
    """A folder in the shipped format as a model-file dict (``state_dict`` from safetensors)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / META).is_file():
        raise UserError(missing_message(folder))
    try:
        meta = json.loads((folder / META).read_text())
        state = load_file(str(folder / WEIGHTS))
    except Exception as e:  # corrupt JSON or weights: one line naming the file
        raise UserError(f"{folder}: not a readable model folder ({type(e).__name__}: {e})".splitlines()[0]) from None
    if meta.get("format") != FORMAT or meta.get("kind") != "emotion":
        raise UserError(f"{folder / META}: not a copypaste-ser emotion model (format {meta.get('format')!r})")
    return {**meta, "state_dict": state}


def is_model_dir(folder: str | Path) -> bool:
    return (Path(folder) / META).is_file()


def missing_message(folder: Path) -> str:
    if folder == DEFAULT_DIR:
        return (f"the default model is not installed ({folder / WEIGHTS} is missing); give a run folder: "
                f"copypaste-ser predict RUN FILE.wav, or reinstall the package")
    return f"{folder}: no {WEIGHTS} and {META} in this model folder"


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
