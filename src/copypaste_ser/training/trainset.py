"""The training items of a task and their cached features: the clean utterances and, with
``noise_aug``, their six noisy copies (noise and music TRAIN pools at 10, 5 and 0 dB,
``augment.noise.training_copies``), of which ``noise_epoch_fraction`` are drawn per epoch.
Cached rather than made on the fly, so an epoch costs no extra feature extraction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from pathlib import Path

import numpy as np

from copypaste_ser.data.manifest import Manifest
from copypaste_ser.errors import UserError
from copypaste_ser.features.batches import Item
from copypaste_ser.features.cache import OnTheFlyFeatures, extract_features
from copypaste_ser.features.mfcc import FeatureConfig
from copypaste_ser.features.speaker_norm import normalise_speakers
from copypaste_ser.training.config import TrainConfig
from copypaste_ser.training.task import Task


def build_items(task: Task, ids: list[str], condition: str = "clean") -> list[Item]:
    """One item per utterance id, with its class, read from the cache of ``condition``."""
    return [Item(i, task.targets[i], condition) for i in ids]


def model_inputs(feats: Mapping[str, np.ndarray], manifest: Manifest, ids: list[str],
                 cfg: TrainConfig) -> Mapping[str, np.ndarray]:
    """What the model reads for ``ids``: the cached features, or with ``cfg.speaker_norm`` each
    speaker's standardised with their own statistics over ``ids`` (one split: training, dev or
    test), all their audio (``speaker``) or their neutral utterances (``neutral-enrolment``;
    features/speaker_norm.py)."""
    return speaker_normalised(feats, manifest, ids, cfg.speaker_norm, cfg.feature_config)


def speaker_normalised(feats: Mapping[str, np.ndarray], manifest: Manifest, ids: list[str], how: str,
                       features: FeatureConfig) -> Mapping[str, np.ndarray]:
    """:func:`features.speaker_norm.normalise_speakers` with the manifest's speakers and neutral label."""
    def is_neutral(utt: str) -> bool:
        return manifest[utt].emotion == manifest.neutral

    if how == "neutral-enrolment" and not any(map(is_neutral, ids)):
        raise UserError(f"speaker_norm neutral-enrolment: corpus {manifest.name!r} has no neutral utterance "
                        f"in this split to enrol speakers with; use --speaker-norm speaker or none")
    return normalise_speakers(feats, lambda utt: manifest[utt].speaker, ids, how, features, is_neutral=is_neutral)


def load_train_features(cfg: TrainConfig, manifest: Manifest, task: Task, progress: bool
                        ) -> tuple[dict[str, Mapping[str, np.ndarray]], list[Item], list[Item]]:
    """Features of the training items: clean plus, with noise_aug, the six noisy copies.
    Returns (condition -> utterance id -> features, clean items, noisy items). Each mapping holds
    the training utterances only (so statistics fitted on it never see dev or test audio that
    happens to be cached) and reads them from the memory-mapped cache when asked."""
    data_dir = Path(cfg.data)
    train_ids = task.train
    utts = manifest.subset(train_ids)
    clean = extract_features(utts, cfg.feature_config, data_dir, progress=progress).view(train_ids)
    stores = {"clean": model_inputs(clean, manifest, train_ids, cfg)}
    items = build_items(task, train_ids)
    noisy: list[Item] = []
    if cfg.noise_aug:
        from copypaste_ser.augment.noise import training_copies
        from copypaste_ser.augment.snr import MIXING_VERSION
        from copypaste_ser.data.corpora.musan import noise_split_for
        if not cfg.noise_root:
            raise UserError("--noise-aug needs --noise-root, a folder in MUSAN layout (noise/, music/)")
        key, sets = noise_split_for(Path(cfg.noise_root), data_dir)
        for cond in training_copies(sets):
            name = f"{key}-mix{MIXING_VERSION}-{cond.name}"
            if cfg.noise_copies == "on-the-fly":  # computed when drawn: no cache on disk
                store = OnTheFlyFeatures(utts, cfg.feature_config, cond)
            else:
                store = extract_features(utts, cfg.feature_config, data_dir, condition=name,
                                         transform=cond, progress=progress).view(train_ids)
            stores[name] = model_inputs(store, manifest, train_ids, cfg)
            noisy += build_items(task, train_ids, name)
    return stores, items, noisy


def sample_noisy(noisy: list[Item], cfg: TrainConfig, epoch: int) -> list[Item]:
    """The noisy items of one epoch: a ``noise_epoch_fraction`` share, drawn from (seed, epoch)
    so a resumed run draws the same."""
    if not noisy or cfg.noise_epoch_fraction >= 1.0:
        return noisy
    rng = np.random.default_rng([cfg.seed, epoch, 7])
    k = int(round(len(noisy) * cfg.noise_epoch_fraction))
    return [noisy[i] for i in rng.choice(len(noisy), size=k, replace=False)]


def balanced_items(items: list[Item], manifest: Manifest, how: str, seed: int, epoch: int) -> list[Item]:
    """``none``: the items as they are. Otherwise as many items, drawn with replacement so each
    class (``class``) or each corpus-and-class pair (``corpus+class``, for combined corpora:
    data/combine.py) weighs the same; drawn from (seed, epoch) so a resumed run draws the same."""
    if how == "none" or not items:
        return items

    def key(it: Item) -> tuple:
        corpus = manifest[it.utt_id].extra.get("corpus", manifest.name) if how == "corpus+class" else ""
        return corpus, it.label

    keys = [key(it) for it in items]
    counts = Counter(keys)
    weights = np.array([1.0 / counts[k] for k in keys])
    rng = np.random.default_rng([seed, epoch, 11])
    chosen = rng.choice(len(items), size=len(items), replace=True, p=weights / weights.sum())
    return [items[i] for i in chosen]

