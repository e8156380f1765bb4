"""Batch and signal augmentations: CopyPaste (utterance concatenation) and noise.

``from copypaste_ser.augment import CopyPaste`` needs only numpy and torch; the noise
transform (``copypaste_ser.augment.noise.AddNoise``) reads audio and is imported on its own.
"""

from copypaste_ser.augment.copypaste import SCHEMES, CopyPaste

__all__ = ["SCHEMES", "CopyPaste"]
