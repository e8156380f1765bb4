"""Batch and signal augmentations: CopyPaste (utterance concatenation) and noise."""

from .copypaste import SCHEMES, CopyPaste
from .noise import AddNoise

__all__ = ["SCHEMES", "AddNoise", "CopyPaste"]
