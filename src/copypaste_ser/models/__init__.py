"""Thin ResNet-34 + multi-head attention pooling (paper section 3.1), encoder heads, the model-file
format (``checkpoint``) and scoring.

``from copypaste_ser.models import build_model`` (and the other names of ``_HOMES``) still works:
they are loaded on first use (PEP 562), so reading the torch-free model-file format
(``checkpoint.FORMAT``) while predicting on onnxruntime never imports torch. The API reference
documents them in their sub-modules.
"""

import importlib
from typing import Any

_HOMES = {"PRESETS": "classifier", "EmotionResNet": "classifier", "ModelConfig": "classifier",
          "build_model": "classifier", "MultiHeadAttentionPooling": "pooling", "lengths_to_mask": "pooling",
          "BasicBlock": "resnet", "ThinResNet34": "resnet"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
