"""CopyPaste batch augmentation for speech emotion recognition (Pappagari et al., 2021).

``CopyPaste`` concatenates utterances along time inside one training batch. It
depends only on numpy (torch tensors are handled when torch is in use; it is not imported
otherwise) and can be used in any training loop::

    cp = CopyPaste("n-cp", neutral_label=2, piece_length=400, seed=0)
    feats, labels = cp(feats, labels)      # lists of (T, D) arrays/tensors, ints

Items are per-utterance arrays whose FIRST axis is time: waveforms ``(n_samples,)``
or feature matrices ``(n_frames, n_dims)``, numpy arrays or torch tensors.

Decisions (paper sections 2 and 3.2.2, plus what the paper leaves open):

* Batch level. With probability ``p`` (0.8 in the paper) a batch is augmented,
  otherwise it is returned unchanged. ``"n+se-cp"`` takes one uniform draw ``u``:
  ``u < p/2`` -> N-CP, ``p/2 <= u < p`` -> SE-CP, else unchanged (40 % / 40 % / 20 %).
* N-CP. Every utterance ``i`` (neutral ones included) is paired with a neutral
  utterance ``j`` drawn uniformly from the batch's neutrals, ``j != i`` when another
  neutral exists; a lone neutral is paired with itself (two random pieces of it).
  The result keeps the label of ``i`` (neutral + neutral stays neutral). A batch with
  no neutral utterance is returned unchanged and counts as not augmented (no fallback
  to SE-CP, also under ``"n+se-cp"``).
* SE-CP. Every utterance ``i`` is paired with a uniformly drawn ``j != i`` of the
  same label (partners are drawn independently, not as a permutation). An
  utterance that is the only one of its class in the batch is kept whole and
  unchanged. If no pair can be formed at all, the batch counts as not augmented.
* Pieces. Each part of a concatenation is a uniformly placed contiguous piece of
  ``piece_length`` time steps of its recording, or the whole recording if shorter;
  ``piece_length=None`` uses whole recordings. The paper takes 4 s (400 frames at
  a 10 ms shift; 64000 samples at 16 kHz). Items left unchanged are never cropped.
* Order. ``"random"``: a fair coin per pair decides which part comes first;
  ``"emotional-first"``: ``i`` first; ``"partner-first"``: ``j`` first.
* Mode. ``"replace"`` (our reading of the paper): an augmented batch consists of
  the concatenations, same batch size. ``"add"``: the originals come first and the
  concatenations are appended, so the batch doubles; items left unchanged (SE-CP
  singletons) are not appended a second time. A batch that is not augmented is
  returned as is in both modes. On EmoDB dev, ``"add"`` was no better than ``"replace"``
  at twice the training time (docs/results/README.md, issue 12), so ``"replace"`` is the
  trainer's default.
* No copies beyond the concatenation itself: pieces are views, unchanged items are
  returned as the same objects. An output takes the container type (and torch
  device) of its anchor item ``i``; a partner of the other kind is converted.
* Mean normalisation is NOT done here; the pipeline applies it after concatenation.
* Randomness comes from one ``numpy.random.Generator`` built from ``seed``: the
  same seed and inputs give the same outputs. ``reseed(seed)`` restarts it (the
  trainer calls it once per epoch with a seed shared by all DDP ranks).
* ``last_plan`` records the last call: the scheme applied (``"none"``, ``"n-cp"``,
  ``"se-cp"``) and, per output item, the source indices and ``(start, length)``
  pieces in concatenation order, plus the anchor ``i`` whose label it carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import sys

import numpy as np

__all__ = ["CopyPaste", "CopyPastePlan", "PlanEntry", "SCHEMES", "MODES", "ORDERS"]

SCHEMES = ("none", "n-cp", "se-cp", "n+se-cp")
MODES = ("replace", "add")
ORDERS = ("random", "emotional-first", "partner-first")


@dataclass(frozen=True)
class PlanEntry:
    """How one output item was made.

    anchor: index ``i`` of the input whose label the output carries.
    sources: input indices in concatenation order: ``(i,)`` when unchanged,
        ``(i, j)`` or ``(j, i)`` for a concatenation.
    pieces: ``(start, length)`` taken from each source, same order as ``sources``.
    """

    anchor: int
    sources: tuple[int, ...]
    pieces: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class CopyPastePlan:
    """Record of one call: ``scheme`` applied to the batch and one entry per output item."""

    scheme: str
    entries: tuple[PlanEntry, ...]

    @property
    def augmented(self) -> bool:
        return self.scheme != "none"


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")


def _time_len(x: Any, k: int) -> int:
    shape = tuple(x.shape)
    if len(shape) == 0:
        raise ValueError(f"item {k} is a scalar; items need a leading time axis")
    return int(shape[0])


def _concat(first: Any, second: Any, like: Any) -> Any:
    """Concatenate two pieces along axis 0, returning the container type of ``like``."""
    torch = sys.modules.get("torch")  # a tensor exists only where torch was imported already
    if torch is None:
        parts = [first, second]
    elif isinstance(like, torch.Tensor):
        parts = [p if isinstance(p, torch.Tensor) else torch.as_tensor(p) for p in (first, second)]
        parts = [p.to(like.device) for p in parts]
        if parts[0].shape[1:] != parts[1].shape[1:]:
            raise ValueError(
                f"cannot concatenate items of shapes {tuple(parts[0].shape)} and {tuple(parts[1].shape)}"
            )
        return torch.cat(parts, dim=0)
    else:
        parts = [p.detach().cpu().numpy() if isinstance(p, torch.Tensor) else p for p in (first, second)]
    if parts[0].shape[1:] != parts[1].shape[1:]:
        raise ValueError(f"cannot concatenate items of shapes {parts[0].shape} and {parts[1].shape}")
    return np.concatenate(parts, axis=0)


class CopyPaste:
    """Concatenate utterances of a batch by emotion label (N-CP, SE-CP, N+SE-CP).

    Args:
        scheme: one of ``SCHEMES``: "none", "n-cp", "se-cp", "n+se-cp".
        neutral_label: integer label of the neutral class (required by N-CP schemes).
        p: probability that a batch is augmented (paper: 0.8).
        piece_length: time steps taken from each part (None: whole recordings).
        mode: "replace" (batch of concatenations) or "add" (originals + concatenations).
        order: "random", "emotional-first" or "partner-first".
        seed: seed of the numpy Generator.
    """

    def __init__(
        self,
        scheme: str = "n-cp",
        neutral_label: int | None = None,
        p: float = 0.8,
        piece_length: int | None = None,
        mode: str = "replace",
        order: str = "random",
        seed: int | None = None,
    ) -> None:
        _check_choice("scheme", scheme, SCHEMES)
        _check_choice("mode", mode, MODES)
        _check_choice("order", order, ORDERS)
        if scheme in ("n-cp", "n+se-cp") and neutral_label is None:
            raise ValueError(
                f"N-CP needs the neutral label: pass neutral_label=<int> for scheme {scheme!r}"
            )
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if piece_length is not None and (int(piece_length) != piece_length or piece_length < 1):
            raise ValueError(f"piece_length must be a positive integer or None, got {piece_length!r}")
        self.scheme = scheme
        self.neutral_label = None if neutral_label is None else int(neutral_label)
        self.p = float(p)
        self.piece_length = None if piece_length is None else int(piece_length)
        self.mode = mode
        self.order = order
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.last_plan: CopyPastePlan | None = None

    def reseed(self, seed: int | None) -> None:
        """Restart the random stream from ``seed`` (e.g. per epoch and rank)."""
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return (
            f"CopyPaste(scheme={self.scheme!r}, neutral_label={self.neutral_label}, p={self.p}, "
            f"piece_length={self.piece_length}, mode={self.mode!r}, order={self.order!r}, seed={self.seed})"
        )

    # ------------------------------------------------------------------ call
    def __call__(self, items: Sequence[Any], labels: Sequence[int]) -> tuple[list, list[int]]:
        items = list(items)
        labels = [int(v) for v in labels]
        if len(items) != len(labels):
            raise ValueError(f"got {len(items)} items but {len(labels)} labels")
        lengths = np.array([_time_len(x, k) for k, x in enumerate(items)], dtype=np.int64)

        applied = self._draw_scheme()
        partners: np.ndarray | None = None
        if applied == "n-cp":
            partners = self._neutral_partners(np.asarray(labels, dtype=np.int64))
        elif applied == "se-cp":
            partners = self._same_emotion_partners(np.asarray(labels, dtype=np.int64))
        if partners is None or not (partners >= 0).any():
            return self._unchanged(items, labels, lengths)
        return self._build(applied, items, labels, lengths, partners)

    def _draw_scheme(self) -> str:
        if self.scheme == "none":
            return "none"
        u = self.rng.random()
        if self.scheme == "n+se-cp":
            if u < self.p / 2:
                return "n-cp"
            return "se-cp" if u < self.p else "none"
        return self.scheme if u < self.p else "none"

    def _neutral_partners(self, labels: np.ndarray) -> np.ndarray | None:
        """Partner index per item (a neutral one), or None when the batch has no neutral."""
        is_neutral = labels == self.neutral_label
        neutrals = np.flatnonzero(is_neutral)
        m = len(neutrals)
        if m == 0:
            return None
        # a neutral item excludes itself when another neutral exists
        exclude_self = is_neutral & (m > 1)
        k = self.rng.integers(0, np.where(exclude_self, m - 1, m))
        rank = np.cumsum(is_neutral) - 1  # position of a neutral item in `neutrals`
        k = np.where(exclude_self & (k >= rank), k + 1, k)
        return neutrals[k]

    def _same_emotion_partners(self, labels: np.ndarray) -> np.ndarray:
        """Partner index per item (same label, not itself), -1 for a class singleton."""
        n = len(labels)
        _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable")  # members grouped by class
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n) - starts[inverse[order]]
        size = counts[inverse]
        k = self.rng.integers(0, np.maximum(size - 1, 1))
        k = np.where(k >= rank, k + 1, k)
        partners = np.where(size > 1, order[np.minimum(starts[inverse] + k, n - 1)], -1)
        return partners

    def _unchanged(self, items: list, labels: list[int], lengths: np.ndarray):
        self.last_plan = CopyPastePlan(
            "none", tuple(PlanEntry(i, (i,), ((0, int(lengths[i])),)) for i in range(len(items)))
        )
        return items, labels

    def _build(self, applied: str, items: list, labels: list[int], lengths: np.ndarray, partners: np.ndarray):
        n = len(items)
        rng = self.rng
        # all draws are made for the whole batch, in a fixed order, for reproducibility
        if self.order == "random":
            anchor_first = rng.random(n) < 0.5
        else:
            anchor_first = np.full(n, self.order == "emotional-first")
        safe_partners = np.where(partners >= 0, partners, np.arange(n))
        len_i = lengths
        len_j = lengths[safe_partners]
        if self.piece_length is None:
            take_i, take_j = len_i, len_j
        else:
            take_i = np.minimum(len_i, self.piece_length)
            take_j = np.minimum(len_j, self.piece_length)
        start_i = rng.integers(0, len_i - take_i + 1)
        start_j = rng.integers(0, len_j - take_j + 1)

        out_items: list = []
        out_labels: list[int] = []
        entries: list[PlanEntry] = []
        if self.mode == "add":
            out_items.extend(items)
            out_labels.extend(labels)
            entries.extend(PlanEntry(i, (i,), ((0, int(lengths[i])),)) for i in range(n))
        for i in range(n):
            j = int(partners[i])
            if j < 0:
                if self.mode == "replace":
                    out_items.append(items[i])
                    out_labels.append(labels[i])
                    entries.append(PlanEntry(i, (i,), ((0, int(lengths[i])),)))
                continue
            si, ti, sj, tj = int(start_i[i]), int(take_i[i]), int(start_j[i]), int(take_j[i])
            piece_i = items[i][si : si + ti]
            piece_j = items[j][sj : sj + tj]
            if anchor_first[i]:
                out = _concat(piece_i, piece_j, items[i])
                entry = PlanEntry(i, (i, j), ((si, ti), (sj, tj)))
            else:
                out = _concat(piece_j, piece_i, items[i])
                entry = PlanEntry(i, (j, i), ((sj, tj), (si, ti)))
            out_items.append(out)
            out_labels.append(labels[i])
            entries.append(entry)
        self.last_plan = CopyPastePlan(applied, tuple(entries))
        return out_items, out_labels
