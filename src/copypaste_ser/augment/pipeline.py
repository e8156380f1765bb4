"""The training augmentation of a run, built from its config: CopyPaste, then SpecAugment.

For models on frozen encoder states (feature kind ``resemblyzer-states``) CopyPaste's
concatenations are re-encoded (reencode.py) so they are what the model would hear;
SpecAugment is refused there, since masking mel frames would mean re-encoding every item.
"""

from __future__ import annotations

from typing import Any

from ..errors import UserError
from ..features import STATES_KIND
from .copypaste import CopyPaste
from .reencode import ReencodeConcatenations
from .specaugment import Chain, SpecAugment


def training_augmentation(cfg: Any, neutral_index: int | None, source: str) -> Any:
    """The batch augmentation for ``cfg`` (a TrainConfig), or None; ``source`` names the
    config in errors."""
    steps: list = []
    states = cfg.feature_config.kind == STATES_KIND
    if cfg.copypaste != "none":
        try:
            cp = CopyPaste(cfg.copypaste, neutral_label=neutral_index, p=cfg.copypaste_p,
                           piece_length=cfg.piece_frames, mode=cfg.copypaste_mode,
                           order=cfg.copypaste_order, seed=cfg.seed)
        except ValueError as e:
            raise UserError(f"{source}: bad CopyPaste option: {e}") from None
        steps.append(ReencodeConcatenations(cp) if states else cp)
    if cfg.spec_augment:
        if states:
            raise UserError(f"{source}: spec_augment works on MFCC inputs, not on Resemblyzer states; "
                            "leave it off for --init resemblyzer-attention")
        steps.append(SpecAugment(seed=cfg.seed))
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else Chain(*steps)
