"""Batch and signal augmentations: CopyPaste (utterance concatenation) and noise."""

from .copypaste import CopyPaste, SCHEMES
