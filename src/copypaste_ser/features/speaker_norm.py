"""Speaker normalisation: every speaker's frames standardised with that speaker's own statistics.

``speaker``: per speaker, the mean and standard deviation of each feature dimension over the
frames of that speaker's utterances in the same split (training, dev or test), computed from the
audio alone, never from labels. A test speaker is thus normalised with their own unlabelled test
audio: transductive, and flattering on corpora where every speaker acts every emotion equally
often (the statistics then hold no emotion bias). ``neutral-enrolment``: per speaker, the
statistics of that speaker's NEUTRAL utterances only, as if each speaker had enrolled by reading a
few neutral sentences; an utterance is never inside its own statistics (a neutral one is
normalised with the speaker's other neutral utterances), and a speaker with no other neutral
utterance gets the pooled neutral statistics of the split. It uses the neutral labels of the
test speaker's enrolment utterances, not the audio of the utterance being scored. ``none`` (the
default) leaves features as they are, which is what a single file at prediction time allows.

Which columns: all of an MFCC row (per-speaker CMVN); for Whisper and wav2vec2-family states only
the encoder state, not the log-mel frames or waveform samples kept beside it for exact CopyPaste.
Resemblyzer's states are made inside the model, so they cannot be normalised here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Callable

import numpy as np

from copypaste_ser.features.mfcc import SSL_KIND, STATES_KIND, WHISPER_KIND, FeatureConfig

#: TrainConfig.speaker_norm values.
SPEAKER_NORMS = ("none", "speaker", "neutral-enrolment")
#: Appended to a speaker-normalised model's init name in run folders and results, so every table says so.
SPEAKER_NORM_SUFFIX = "+speaker-norm"
_SUFFIXES = {"none": "", "speaker": SPEAKER_NORM_SUFFIX, "neutral-enrolment": "+neutral-enrolment"}
#: Floor of a normalised dimension's standard deviation (a constant dimension stays finite).
MIN_STD = 1e-4


def normalised_columns(cfg: FeatureConfig) -> int | None:
    """First column speaker normalisation touches (it runs to the end); None: not possible."""
    if cfg.kind == STATES_KIND:
        return None
    if cfg.kind in (WHISPER_KIND, SSL_KIND):  # the encoder's input kept in each row stays as it is
        return cfg.input_dim
    return 0


def norm_suffix(how: str) -> str:
    """What a model's init name carries in run folders and tables for ``speaker_norm = how``."""
    return _SUFFIXES[how]


def _sums(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    return x.sum(0), (x * x).sum(0), len(x)


def _mean_std(s: np.ndarray, ss: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    mean = s / n
    std = np.sqrt(np.maximum(ss / n - mean * mean, 0.0))
    return mean.astype(np.float32), np.maximum(std, MIN_STD).astype(np.float32)


def speaker_sums(feats: Mapping[str, np.ndarray], speaker_of: Callable[[str], str], ids: Iterable[str],
                 start: int = 0) -> dict[str, list]:
    """speaker -> [sum, sum of squares, frames] of columns ``start:`` over that speaker's ``ids``
    (float64, one utterance at a time: a corpus's features are never held at once)."""
    sums: dict[str, list] = {}
    for utt in ids:
        x = np.asarray(feats[utt], dtype=np.float64)[:, start:]
        if not len(x):
            continue
        acc = sums.setdefault(speaker_of(utt), [0.0, 0.0, 0])
        for k, v in enumerate(_sums(x)):
            acc[k] = acc[k] + v
    return sums


def speaker_statistics(feats: Mapping[str, np.ndarray], speaker_of: Callable[[str], str],
                       ids: Iterable[str], start: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """speaker -> (mean, std) of columns ``start:`` over the frames of that speaker's ``ids``."""
    return {spk: _mean_std(*acc) for spk, acc in speaker_sums(feats, speaker_of, ids, start).items()}


class SpeakerNormalised(Mapping):
    """``view[utt] -> (n_frames, dim)``, columns ``start:`` standardised with the statistics of
    the utterance's speaker over ``ids`` (read lazily from ``feats``, e.g. the memory-mapped cache)."""

    def __init__(self, feats: Mapping[str, np.ndarray], speaker_of: Callable[[str], str],
                 ids: Iterable[str], start: int = 0):
        self.feats, self.ids, self.start = feats, list(ids), start
        self.speaker = {i: speaker_of(i) for i in self.ids}
        self._fit()

    def _fit(self) -> None:
        """The statistics over ``ids`` (one pass over their features)."""
        self.stats = speaker_statistics(self.feats, self.speaker.__getitem__, self.ids, self.start)

    def _statistics(self, utt: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) that standardise ``utt`` (whose features are ``x``)."""
        return self.stats[self.speaker[utt]]

    def __getitem__(self, utt: str) -> np.ndarray:
        x = np.array(self.feats[utt], dtype=np.float32)  # a copy: the cache is read-only
        if utt not in self.speaker:
            raise KeyError(utt)
        if len(x):
            mean, std = self._statistics(utt, x)
            x[:, self.start:] = (x[:, self.start:] - mean) / std
        return x

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


class NeutralEnrolled(SpeakerNormalised):
    """As :class:`SpeakerNormalised`, with each speaker's statistics taken from that speaker's
    neutral utterances among ``ids``, leaving out the utterance being normalised."""

    def __init__(self, feats: Mapping[str, np.ndarray], speaker_of: Callable[[str], str],
                 ids: Iterable[str], is_neutral: Callable[[str], bool], start: int = 0):
        self.is_neutral = is_neutral
        super().__init__(feats, speaker_of, ids, start)

    def _fit(self) -> None:
        enrolment = [i for i in self.ids if self.is_neutral(i)]
        self.neutral = set(enrolment)
        self.sums = speaker_sums(self.feats, self.speaker.__getitem__, enrolment, self.start)
        if not self.sums:
            raise ValueError("neutral-enrolment: no neutral utterance with frames in this split")
        self.pooled = [sum(acc[k] for acc in self.sums.values()) for k in range(3)]

    def _statistics(self, utt: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        own = _sums(x[:, self.start:].astype(np.float64)) if utt in self.neutral else (0.0, 0.0, 0)
        acc = self.sums.get(self.speaker[utt])
        if acc is None or acc[2] - own[2] == 0:  # no other neutral utterance of this speaker
            acc = self.pooled
        return _mean_std(*(acc[k] - own[k] for k in range(3)))


def normalise_speakers(feats: Mapping[str, np.ndarray], speaker_of: Callable[[str], str], ids: Iterable[str],
                       how: str, cfg: FeatureConfig, is_neutral: Callable[[str], bool] | None = None
                       ) -> Mapping[str, np.ndarray]:
    """``feats`` as a model trained with ``speaker_norm = how`` reads them (``none``: unchanged;
    ``neutral-enrolment`` needs ``is_neutral``, which utterances are neutral)."""
    if how == "none":
        return feats
    start = normalised_columns(cfg) or 0
    if how == "neutral-enrolment":
        if is_neutral is None:
            raise ValueError("neutral-enrolment needs to know which utterances are neutral")
        return NeutralEnrolled(feats, speaker_of, ids, is_neutral, start)
    return SpeakerNormalised(feats, speaker_of, ids, start)


__all__ = ["NeutralEnrolled", "normalise_speakers", "norm_suffix", "SPEAKER_NORMS", "SPEAKER_NORM_SUFFIX",
           "SpeakerNormalised", "normalised_columns", "speaker_statistics", "speaker_sums"]
