"""Multi-head attention pooling (paper section 3.1, equations 1-2).

For each head ``h`` with a learned centre ``mu_h`` and a learned positive scale
``s_h``::

    w_{h,t} = softmax_t( -s_h * ||x_t - mu_h|| )        (1)
    e_h     = sum_t w_{h,t} x_t                          (2)

and the heads' ``e_h`` are concatenated into one ``heads * in_dim`` vector.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """``(B,)`` valid lengths -> ``(B, max_len)`` bool mask, True on valid frames."""
    return torch.arange(max_len, device=lengths.device) < lengths.to(torch.long).unsqueeze(1)


class MultiHeadAttentionPooling(nn.Module):
    """Pools ``(B, T, in_dim)`` frames into ``(B, heads * in_dim)``.

    ``s_h = softplus(scale_param_h)`` stays positive; it starts at
    ``1 / sqrt(in_dim)`` so the initial scores are of order one rather than
    saturated. ``mu`` starts from a small random normal.
    """

    def __init__(self, in_dim: int, heads: int, eps: float = 1e-6) -> None:
        super().__init__()
        if in_dim < 1 or heads < 1:
            raise ValueError(f"in_dim and heads must be >= 1, got in_dim={in_dim}, heads={heads}")
        self.in_dim = in_dim
        self.heads = heads
        self.eps = eps
        self.out_dim = heads * in_dim
        self.mu = nn.Parameter(0.1 * torch.randn(heads, in_dim))
        s0 = 1.0 / math.sqrt(in_dim)
        # inverse softplus, so that softplus(scale_param) == s0 at init
        self.scale_param = nn.Parameter(torch.full((heads,), math.log(math.expm1(s0))))

    @property
    def scale(self) -> Tensor:
        """The positive scales ``s_h``, shape ``(heads,)``."""
        return F.softplus(self.scale_param)

    def check_input(self, x: Tensor, lengths: Tensor | None = None, mask: Tensor | None = None) -> None:
        """Raise ValueError for inputs :meth:`forward` would pool wrongly (kept out of
        ``forward``: data-dependent checks there break ONNX export and ``torch.export``)."""
        if x.dim() != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"expected (batch, frames, {self.in_dim}), got {tuple(x.shape)}")
        b, t, _ = x.shape
        if lengths is not None and mask is not None:
            raise ValueError("give lengths or mask, not both")
        if lengths is not None:
            if lengths.shape != (b,):
                raise ValueError(f"lengths must have shape ({b},), got {tuple(lengths.shape)}")
            mask = lengths_to_mask(lengths, t)
        if mask is not None:
            if mask.shape != (b, t):
                raise ValueError(f"mask must have shape ({b}, {t}), got {tuple(mask.shape)}")
            if not bool(mask.to(torch.bool).any(dim=1).all()):
                raise ValueError("every item needs at least one valid frame")

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        mask: Tensor | None = None,
        return_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Pool ``x`` of shape ``(B, T, in_dim)``.

        ``lengths`` (B,) or ``mask`` (B, T, True = valid) mark the valid frames
        (at most one of the two; neither means all frames are valid). Every
        item must have at least one valid frame. Padded frames get weight
        exactly 0 and their values (even NaN) do not reach the output.

        Returns ``(B, heads * in_dim)``, and the weights ``(B, heads, T)`` too
        when ``return_weights`` is set. Inputs are not checked here (see
        :meth:`check_input`): checks in ``forward`` break export.
        """
        if lengths is not None:
            mask = lengths_to_mask(lengths.to(x.device), x.shape[1])
        if mask is not None:
            mask = mask.to(device=x.device, dtype=torch.bool)
            x = x.masked_fill(~mask.unsqueeze(-1), 0.0)

        # ||x_t - mu_h||^2 = ||x_t||^2 - 2 x_t.mu_h + ||mu_h||^2, as one matmul
        # instead of a (B, T, H, D) difference tensor; clamp guards rounding.
        sq = (
            x.pow(2).sum(-1, keepdim=True)  # (B, T, 1)
            - 2.0 * x @ self.mu.t()  # (B, T, H)
            + self.mu.pow(2).sum(-1)  # (H,)
        )
        dist = torch.sqrt(sq.clamp_min(0.0) + self.eps)  # eps inside: finite gradient at 0
        scores = (-self.scale * dist).transpose(1, 2)  # (B, H, T)
        if mask is not None:
            scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, H, T)
        pooled = (weights @ x).flatten(1)  # (B, H, D) -> (B, H*D)
        if return_weights:
            return pooled, weights
        return pooled
