"""The top blocks of a Whisper encoder, trained with the emotion head (``encoder_tune_layers``).

A whisper-attention model that tunes its top ``k`` blocks reads the cached states of block
``L - k`` (features/whisper_states.py; exact CopyPaste re-encodes joins up to that block) and runs
copies of blocks ``L - k + 1 .. L`` here, started from the pretrained weights and trained at
``encoder_lr_scale`` of the head's rate. They attend within each 30-s window of states, with the
batch's padding masked, exactly as the frozen encoder does (features/whisper.py), so at the start
of training the model reads what a frozen block ``L`` would give it. Whisper's final LayerNorm is
part of the last block's output and is tuned with it when ``L`` is the last block.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from copypaste_ser.features.whisper import WhisperBlock, WhisperEncoder


class TunedWhisperBlocks(nn.Module):
    """``(B, T, width)`` states of block ``first`` -> states of block ``first + count``."""

    def __init__(self, width: int, heads: int, count: int, ends_encoder: bool, positions: int = 1500) -> None:
        super().__init__()
        self.positions = positions
        self.blocks = nn.ModuleList(WhisperBlock(width, heads) for _ in range(count))
        self.final_norm = nn.LayerNorm(width) if ends_encoder else None

    def load_from(self, encoder: WhisperEncoder, first: int) -> None:
        """Start from the encoder's blocks ``first + 1 ..`` (its block ``i`` is ``blocks[i - 1]``)."""
        for mine, theirs in zip(self.blocks, encoder.blocks[first: first + len(self.blocks)]):
            mine.load_state_dict(theirs.state_dict())
        if self.final_norm is not None:
            self.final_norm.load_state_dict(encoder.ln_post.state_dict())

    def forward(self, h: Tensor, lengths: Tensor | None = None) -> Tensor:
        outs = []
        for start in range(0, max(h.shape[1], 1), self.positions):  # each 30-s window on its own
            x = h[:, start: start + self.positions]
            mask = None
            if lengths is not None:
                valid = torch.arange(x.shape[1], device=x.device)[None, :] < (lengths.to(x.device) - start)[:, None]
                # True = attend; a window wholly past an item's end attends everywhere (no empty softmax)
                mask = valid[:, None, None, :] | ~valid.any(1)[:, None, None, None]
            for block in self.blocks:
                x = block(x, mask)
            outs.append(self.final_norm(x) if self.final_norm is not None else x)
        return torch.cat(outs, dim=1)


__all__ = ["TunedWhisperBlocks"]
