"""The model shipped inside the package, and the format it ships in.

``pretrained/default/`` holds::

    model.safetensors   the weights (state dict; no pickle, safe to load)
    model.json          format, kind, model {arch, config}, labels, features, provenance
    MODEL_CARD.md       data, classes, licence, scores, known limits

so ``copypaste-ser predict recording.wav`` works with no run folder. This module holds the
format (file names, :data:`DEFAULT_DIR`, reading): :func:`load_model_dir` reads a folder
into the same dict as ``checkpoint.load_model_file`` (``state_dict`` included). Writing one
from a trained run (``save.save_default``) lives in pretrained/save.py, because it exports
ONNX and export.py loads models through engines.py, which reads this format.
"""

from __future__ import annotations

import json
from pathlib import Path

from copypaste_ser.errors import UserError
from copypaste_ser.models.checkpoint import FORMAT, check_model_content

#: Where the shipped default model lives (package data, see pyproject.toml).
DEFAULT_DIR = Path(__file__).resolve().parent / "default"
WEIGHTS, META, CARD, ONNX = "model.safetensors", "model.json", "MODEL_CARD.md", "model.onnx"


def read_model_meta(folder: str | Path) -> dict:
    """A model folder's ``model.json`` (checked to be an emotion model), without its weights:
    what predicting with the folder's ONNX graph needs, no torch."""
    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / META).is_file():
        raise UserError(missing_message(folder))
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{folder / META}: not readable JSON ({type(e).__name__}: {e})".splitlines()[0]) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("kind") != "emotion":
        raise UserError(f"{folder / META}: not a copypaste-ser emotion model (format "
                        f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    return meta


def load_model_dir(folder: str | Path) -> dict:
    """A folder in the shipped format as a model-file dict (``state_dict`` from safetensors)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = read_model_meta(folder)
    try:
        state = load_file(str(folder / WEIGHTS))
    except Exception as e:  # corrupt weights: one line naming the file
        raise UserError(f"{folder}: not a readable model folder ({type(e).__name__}: {e})".splitlines()[0]) from None
    return check_model_content({**meta, "state_dict": state}, str(folder))


def is_model_dir(folder: str | Path) -> bool:
    """Whether ``folder`` is meant as a model folder (it has ``model.json``)."""
    return (Path(folder) / META).is_file()


def missing_message(folder: Path) -> str:
    """One line saying what is missing; for the default model, how to do without it."""
    if folder == DEFAULT_DIR:
        return (f"the default model is not installed ({folder / WEIGHTS} is missing); give a run folder: "
                f"copypaste-ser predict RUN FILE.wav, or reinstall the package")
    return f"{folder}: no {WEIGHTS} and {META} in this model folder"
