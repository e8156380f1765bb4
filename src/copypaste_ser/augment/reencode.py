"""Exact CopyPaste for models on frozen encoder states (models/encoder_head.py).

Items are ``(T, 40 + 768)`` frames: mel power and the cached states of Resemblyzer's LSTM, or
``(T, 160 + 512)`` rows: two Whisper log-mel frames and one block's state
(features/whisper_states.py), or ``(T, 320 + 768)`` rows: the waveform samples of one state and
one layer's state of a wav2vec 2.0 / HuBERT / WavLM encoder (features/ssl_encoders.py); the
"mel" part below is whichever raw input the encoder reads.
Concatenating cached states would not be what the model hears: the second piece's states
were computed without the first piece before it, and a piece cut from the middle of an
utterance keeps the context it had there. So after CopyPaste builds its concatenations,
their mel halves are run through the frozen encoder again and the states replaced. Items
CopyPaste left unchanged keep their cached states, so batches that are not augmented cost
nothing extra (docs/benchmarks.md gives the cost of the re-encoding per epoch).

``copypaste_join: cached-states`` skips the re-encoding and joins the cached rows as they are: an
approximation, 20-30 times cheaper an epoch for Whisper, named so in run folders and tables
(``+approx-joins``). Measured on Whisper it trains worse than exact joins and than No CP
(docs/results/whisper/approximate-joins), so it is never a default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from copypaste_ser.augment.copypaste import CopyPaste, CopyPastePlan
from copypaste_ser.features.encoders import MEL_DIM, ResemblyzerStates, encode_arrays

#: How CopyPaste joins items of frozen-encoder states: encoded whole (exact) or the cached states
#: of the pieces side by side (an approximation; frame-local MFCC joins are exact either way).
JOINS = ("exact", "cached-states")
#: What a model trained with approximate joins carries in its init name (run folders, tables).
APPROX_JOIN_SUFFIX = "+approx-joins"


def join_suffix(copypaste: str, join: str) -> str:
    """The init-name suffix of a run with scheme ``copypaste`` and ``join`` (none without joins)."""
    return APPROX_JOIN_SUFFIX if copypaste != "none" and join == "cached-states" else ""


class ReencodeConcatenations:
    """``CopyPaste`` then re-encode the concatenations: ``(items, labels) -> (items, labels)``."""

    def __init__(self, copypaste: CopyPaste, encoder: ResemblyzerStates | None = None,
                 mel_dim: int = MEL_DIM, encode: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None) -> None:
        """``encode`` maps mel parts to states (default: Resemblyzer's LSTM, ``encoder`` or the shared one)."""
        self.copypaste = copypaste
        self.encoder = encoder
        self.mel_dim = mel_dim
        self.encode = encode if encode is not None else (lambda mels: encode_arrays(mels, self.encoder))
        self.reencoded = 0  # concatenations re-encoded so far (for benchmarks and logs)

    @property
    def last_plan(self) -> CopyPastePlan | None:
        return self.copypaste.last_plan

    def reseed(self, seed: int | None) -> None:
        self.copypaste.reseed(seed)

    def __call__(self, items: Sequence[Any], labels: Sequence[int]) -> tuple[list, list[int]]:
        out, out_labels = self.copypaste(items, labels)
        plan = self.copypaste.last_plan
        joined = [k for k, entry in enumerate(plan.entries) if len(entry.sources) > 1] if plan else []
        if joined:
            mels = [np.asarray(out[k])[:, : self.mel_dim] for k in joined]
            for k, mel, states in zip(joined, mels, self.encode(mels)):
                out[k] = np.concatenate([mel, states], axis=1).astype(np.float32, copy=False)
            self.reencoded += len(joined)
        return out, out_labels
