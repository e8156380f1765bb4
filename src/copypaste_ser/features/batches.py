"""From cached features to padded batches: random chunks, CopyPaste, mean normalisation.

Order inside a training batch (paper 3.2.2): each utterance is cut to a random chunk
(the training chunk, ``TrainConfig.chunk_seconds``), CopyPaste concatenates pieces of the
chunks (``TrainConfig.copypaste_piece_seconds``, 4 s in the paper), then every item is
mean-normalised as a whole and the batch is zero-padded with its true lengths (the
pooling ignores padded frames). ``mean_norm=False`` (FeatureConfig.mean_norm, e.g.
Resemblyzer's mel power input) skips the normalisation.

Distributed training builds the same batches as one process: see :class:`TrainBatches`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from copypaste_ser.features.mfcc import mean_normalize

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # feats (B,T,F), lengths (B,), labels (B,)


@dataclass(frozen=True)
class Item:
    """One training or test example: an utterance under a condition ('clean', 'noise-10dB', ...)."""

    utt_id: str
    label: int
    condition: str = "clean"


def random_chunk(feats: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    if length <= 0 or len(feats) <= length:
        return feats
    start = int(rng.integers(0, len(feats) - length + 1))
    return feats[start: start + length]


def pad_batch(items: Sequence[np.ndarray], labels: Sequence[int], mean_norm: bool = True,
              min_frames: int = 0) -> Batch:
    """Mean-normalise each item (unless ``mean_norm`` is False) and zero-pad to the longest
    (or to ``min_frames`` if longer: a DDP shard is padded like its whole global batch)."""
    lengths = torch.tensor([len(x) for x in items], dtype=torch.long)
    dim = items[0].shape[1]
    out = torch.zeros(len(items), max(int(lengths.max()), min_frames), dim, dtype=torch.float32)
    for i, x in enumerate(items):
        x = mean_normalize(x) if mean_norm else np.array(x)  # a copy: cached arrays are read-only
        out[i, : len(x)] = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return out, lengths, torch.tensor(list(labels), dtype=torch.long)


FeatureLookup = Callable[[Item], np.ndarray]


class TrainBatches:
    """Shuffled training batches for one epoch, sharded over DDP ranks after augmentation.

    Every rank builds the whole GLOBAL batch with the same random streams (permutation,
    chunk positions and CopyPaste all seeded by ``seed`` and the epoch, never by the rank),
    so the augmentation decision and the partners are drawn over the global batch exactly
    as one process draws them. Only then is the result sharded: rank ``r`` keeps items
    ``r, r + world_size, ...`` and pads them to the global batch's longest item, so the
    shards, interleaved, are the one-process batch tensor. ``global_size`` is the size of
    the last global batch (after augmentation), for a loss that averages over it.

    One difference remains: the batch split depends on ``world_size`` when the last batch
    is too small to give every rank two items (it then joins the batch before it).
    ``augment`` is any callable (items, labels) -> (items, labels), e.g. a CopyPaste.
    """

    def __init__(self, items: Sequence[Item], lookup: FeatureLookup, batch_size: int,
                 chunk_frames: int, augment: Callable | None = None, seed: int = 0,
                 rank: int = 0, world_size: int = 1, mean_norm: bool = True):
        self.items = list(items)
        self.lookup = lookup
        self.batch_size = batch_size
        self.chunk_frames = chunk_frames
        self.augment = augment
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.mean_norm = mean_norm
        self.global_size = 0

    def _bounds(self) -> list[tuple[int, int]]:
        n, bs = len(self.items), self.batch_size
        bounds = [(s, min(s + bs, n)) for s in range(0, n, bs)] or [(0, 0)]
        # A tail too small to give every rank two items (BatchNorm needs >= 2) joins the batch before it.
        if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < 2 * self.world_size:
            bounds[-2:] = [(bounds[-2][0], n)]
        return bounds

    def num_batches(self) -> int:
        return len(self._bounds())

    def epoch(self, epoch: int) -> Iterator[Batch]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.items))
        rng = np.random.default_rng([self.seed, epoch, 1])  # shared by all ranks: no rank in the seed
        if self.augment is not None and hasattr(self.augment, "reseed"):
            self.augment.reseed(int(rng.integers(2**31)))
        for start, stop in self._bounds():
            chosen = [self.items[i] for i in order[start:stop]]
            feats = [random_chunk(self.lookup(it), self.chunk_frames, rng) for it in chosen]
            labels = [it.label for it in chosen]
            if self.augment is not None:
                feats, labels = self.augment(feats, labels)
            self.global_size = len(feats)
            longest = max(len(x) for x in feats)
            mine = list(range(self.rank, len(feats), self.world_size))
            if not mine:  # fewer items than ranks: keep ranks in step by reusing an item
                mine = [0]
            yield pad_batch([feats[k] for k in mine], [labels[k] for k in mine], self.mean_norm,
                            min_frames=longest)


def eval_batches(feats: Sequence[np.ndarray], labels: Sequence[int], max_frames: int = 20000,
                 mean_norm: bool = True, same_length: bool = False) -> Iterator[tuple[list[int], Batch]]:
    """Whole utterances, sorted by length, grouped to about ``max_frames`` padded frames; with
    ``same_length`` a group holds one length only, for models whose output padding would change."""
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]))
    group: list[int] = []
    for i in order:
        if group and (len(feats[i]) * (len(group) + 1) > max_frames
                      or (same_length and len(feats[i]) != len(feats[group[0]]))):
            yield group, pad_batch([feats[j] for j in group], [labels[j] for j in group], mean_norm)
            group = []
        group.append(i)
    if group:
        yield group, pad_batch([feats[j] for j in group], [labels[j] for j in group], mean_norm)
