"""Thin ResNet-34 frame-level network (paper section 3.1, Table 1).

Input ``(B, T, F)`` features (23-dim MFCC in the paper) are treated as a
one-channel image with time on the height axis and frequency on the width axis:

=====================================  ====================  ==================
layer                                  channels              output (T x F=23)
=====================================  ====================  ==================
conv 7x7, stride 1 (no max-pool)       w                     T x 23
3 BasicBlocks                          w                     T x 23
4 BasicBlocks, stride 2                2w                    T/2 x 12
6 BasicBlocks, stride 2                4w                    T/4 x 6
3 BasicBlocks, stride 2                8w                    T/8 x 3
average over frequency ("1x3")         8w                    T/8
=====================================  ====================  ==================

Every stride-2 convolution has kernel 3 and padding 1, so a length ``L`` maps
to ``floor((L - 1) / 2) + 1`` (= ``ceil(L / 2)``); any ``T >= 1`` is accepted
and gives ``T' = ceil(T / 8) >= 1`` output frames (no minimum length).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN (ReLU between and after), with a residual connection.

    The shortcut is a 1x1 conv + BN projection when the stride or the channel
    count changes, the identity otherwise.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ThinResNet34(nn.Module):
    """Frame-level network: ``(B, T, F)`` features -> ``(B, 8*width, ceil(T/8))``.

    ``width`` is the channel count of the first stage; stages have
    ``width, 2*width, 4*width, 8*width`` channels and ``blocks`` BasicBlocks
    each, with strides 1, 2, 2, 2 on both time and frequency.
    """

    STRIDES: tuple[int, ...] = (1, 2, 2, 2)

    def __init__(self, width: int = 16, blocks: Sequence[int] = (3, 4, 6, 3), feat_dim: int = 23) -> None:
        super().__init__()
        blocks = tuple(int(b) for b in blocks)
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        if len(blocks) != len(self.STRIDES) or any(b < 1 for b in blocks):
            raise ValueError(f"blocks must be {len(self.STRIDES)} positive block counts, got {blocks}")
        if feat_dim < 1:
            raise ValueError(f"feat_dim must be >= 1, got {feat_dim}")
        self.width = width
        self.blocks = blocks
        self.feat_dim = feat_dim

        self.conv1 = nn.Conv2d(1, width, 7, stride=1, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)

        stages = []
        in_ch = width
        for i, (n, stride) in enumerate(zip(blocks, self.STRIDES)):
            out_ch = width * 2**i
            layers = [BasicBlock(in_ch, out_ch, stride)]
            layers += [BasicBlock(out_ch, out_ch, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            in_ch = out_ch
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = in_ch
        self.out_freq = self._reduce(feat_dim)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @classmethod
    def _reduce(cls, n):
        """Length after the strided convolutions (int or integer Tensor)."""
        for s in cls.STRIDES:
            if s != 1:
                n = (n - 1) // s + 1
        return n

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Map input frame counts ``(B,)`` to encoder output frame counts ``(B,)``."""
        return self._reduce(lengths)

    def feature_map(self, feats: Tensor) -> Tensor:
        """``(B, T, F)`` -> ``(B, 8w, T', F')`` before the frequency average."""
        x = self.relu(self.bn1(self.conv1(feats.unsqueeze(1))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, feats: Tensor) -> Tensor:
        """``(B, T, F)`` -> ``(B, 8w, T')`` with ``T' = ceil(T/8)``.

        The "average pool 1x3" of Table 1 is the mean over the remaining
        frequency bins (3 of them for F=23). Unchecked (see :meth:`check_input`).
        """
        return self.feature_map(feats).mean(dim=-1)

    def check_input(self, feats: Tensor) -> None:
        """Raise ValueError unless ``feats`` is ``(B, T >= 1, feat_dim)`` (outside ``forward``:
        checks there break export)."""
        if feats.dim() != 3:
            raise ValueError(f"expected features of shape (batch, frames, {self.feat_dim}), got {tuple(feats.shape)}")
        if feats.shape[-1] != self.feat_dim:
            raise ValueError(f"expected {self.feat_dim} features per frame, got {feats.shape[-1]}")
        if feats.shape[1] < 1:
            raise ValueError("expected at least 1 frame, got 0")
