"""Speaker normalisation: every speaker's frames standardised with that speaker's own statistics.

``speaker``: per speaker, the mean and standard deviation of each feature dimension over the
frames of that speaker's utterances in the same split (training, dev or test), computed from the
audio alone, never from labels. A test speaker is thus normalised with their own unlabelled test
audio: transductive, and flattering on corpora where every speaker acts every emotion equally
often (the statistics then hold no emotion bias). ``none`` (the default) leaves features as they
are, which is what a single file at prediction time allows.

Which columns: all of an MFCC row (per-speaker CMVN); for Whisper states only the encoder
state, not the log-mel rows kept beside it for exact CopyPaste. Resemblyzer's states are made
inside the model, so they cannot be normalised here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Callable

import numpy as np

from copypaste_ser.features.mfcc import STATES_KIND, WHISPER_KIND, FeatureConfig

#: TrainConfig.speaker_norm values.
SPEAKER_NORMS = ("none", "speaker")
#: Appended to a speaker-normalised model's init name in run folders and results, so every table says so.
SPEAKER_NORM_SUFFIX = "+speaker-norm"
#: Floor of a normalised dimension's standard deviation (a constant dimension stays finite).
MIN_STD = 1e-4


def normalised_columns(cfg: FeatureConfig) -> int | None:
    """First column speaker normalisation touches (it runs to the end); None: not possible."""
    if cfg.kind == STATES_KIND:
        return None
    if cfg.kind == WHISPER_KIND:
        return 2 * cfg.num_mel_bins  # the two log-mel frames of each row stay as they are
    return 0


def speaker_statistics(feats: Mapping[str, np.ndarray], speaker_of: Callable[[str], str],
                       ids: Iterable[str], start: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """speaker -> (mean, std) of columns ``start:`` over the frames of that speaker's ``ids``
    (float64 sums, one utterance at a time: a corpus's features are never held at once)."""
    sums: dict[str, list] = {}
    for utt in ids:
        x = np.asarray(feats[utt], dtype=np.float64)[:, start:]
        if not len(x):
            continue
        acc = sums.setdefault(speaker_of(utt), [0.0, 0.0, 0])
        acc[0] = acc[0] + x.sum(0)
        acc[1] = acc[1] + (x * x).sum(0)
        acc[2] += len(x)
    stats = {}
    for speaker, (s, ss, n) in sums.items():
        mean = s / n
        std = np.sqrt(np.maximum(ss / n - mean * mean, 0.0))
        stats[speaker] = (mean.astype(np.float32), np.maximum(std, MIN_STD).astype(np.float32))
    return stats


class SpeakerNormalised(Mapping):
    """``view[utt] -> (n_frames, dim)``, columns ``start:`` standardised with the statistics of
    the utterance's speaker over ``ids`` (read lazily from ``feats``, e.g. the memory-mapped cache)."""

    def __init__(self, feats: Mapping[str, np.ndarray], speaker_of: Callable[[str], str],
                 ids: Iterable[str], start: int = 0):
        self.feats, self.ids, self.start = feats, list(ids), start
        self.speaker = {i: speaker_of(i) for i in self.ids}
        self.stats = speaker_statistics(feats, self.speaker.__getitem__, self.ids, start)

    def __getitem__(self, utt: str) -> np.ndarray:
        x = np.array(self.feats[utt], dtype=np.float32)  # a copy: the cache is read-only
        if utt not in self.speaker:
            raise KeyError(utt)
        if len(x):
            mean, std = self.stats[self.speaker[utt]]
            x[:, self.start:] = (x[:, self.start:] - mean) / std
        return x

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


def normalise_speakers(feats: Mapping[str, np.ndarray], speaker_of: Callable[[str], str], ids: Iterable[str],
                       how: str, cfg: FeatureConfig) -> Mapping[str, np.ndarray]:
    """``feats`` as a model trained with ``speaker_norm = how`` reads them (``none``: unchanged)."""
    if how == "none":
        return feats
    return SpeakerNormalised(feats, speaker_of, ids, normalised_columns(cfg) or 0)


__all__ = ["normalise_speakers", "SPEAKER_NORMS", "SPEAKER_NORM_SUFFIX", "SpeakerNormalised", "normalised_columns", "speaker_statistics"]
