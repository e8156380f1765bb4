"""The training augmentation of a run, built from its config: CopyPaste, then SpecAugment.

For models on frozen encoder states (feature kinds ``resemblyzer-states``, ``whisper-states``,
``ssl-states``) CopyPaste's
concatenations are re-encoded (reencode.py) so they are what the model would hear;
SpecAugment is refused there, since masking mel frames would mean re-encoding every item.
With ``copypaste_join: cached-states`` the cached states are joined as they are (an approximation).
"""

from __future__ import annotations

from typing import Any

from copypaste_ser.augment.copypaste import CopyPaste
from copypaste_ser.augment.reencode import ReencodeConcatenations
from copypaste_ser.augment.specaugment import Chain, SpecAugment
from copypaste_ser.errors import UserError
from copypaste_ser.features.mfcc import FROZEN_KINDS, encode_inputs


def training_augmentation(cfg: Any, neutral_index: int | None, source: str) -> Any:
    """The batch augmentation for ``cfg`` (a TrainConfig), or None; ``source`` names the
    config in errors."""
    steps: list = []
    features = cfg.feature_config
    states = features.kind in FROZEN_KINDS
    if cfg.copypaste != "none":
        try:
            cp = CopyPaste(cfg.copypaste, neutral_label=neutral_index, p=cfg.copypaste_p,
                           piece_length=cfg.piece_frames, mode=cfg.copypaste_mode,
                           order=cfg.copypaste_order, seed=cfg.seed)
        except ValueError as e:
            raise UserError(f"{source}: bad CopyPaste option: {e}") from None
        steps.append(reencoding(cp, features) if states and cfg.copypaste_join == "exact" else cp)
    if cfg.spec_augment:
        if states:
            raise UserError(f"{source}: spec_augment works on MFCC inputs, not on encoder states; "
                            f"leave it off for --init {cfg.init}")
        steps.append(SpecAugment(seed=cfg.seed))
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else Chain(*steps)


def reencoding(cp: CopyPaste, features: Any) -> ReencodeConcatenations:
    """CopyPaste whose joins are encoded whole by the run's frozen encoder (Resemblyzer, Whisper,
    or wav2vec 2.0 / HuBERT / WavLM: their raw input, mel or waveform rows, is joined, then encoded)."""
    return ReencodeConcatenations(cp, mel_dim=features.input_dim, encode=lambda rows: encode_inputs(rows, features))

