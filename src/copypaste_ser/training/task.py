"""What a run learns (:class:`Task`) and how a training config picks it.

Two tasks share the one training loop (train.py): ``emotion`` (the corpus fold; best epoch
by dev weighted F1; model kind "emotion") and ``speaker`` (speaker-ID pretraining on a
speaker corpus, speaker.py; best epoch by held-out accuracy; model kind "speaker").

Held-out utterances of speaker pretraining (its dev split, also scored at the end): a
speaker corpus has one fold with every utterance in train (manifest.SPEAKER_FOLD), and
:func:`held_out_split` splits it deterministically: each speaker with n >= 2 utterances
gives ``ceil(0.3 n)`` of them (at least 1, at most n - 1) to held-out, picked by a
permutation seeded from the speaker id; speakers with one utterance are train-only (they
are still classes).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from copypaste_ser.data.manifest import Manifest, Protocol
from copypaste_ser.errors import UserError
from copypaste_ser.training.config import TrainConfig

#: Share of each speaker's utterances held out (rounded up; see held_out_split).
HELD_OUT_FRACTION = 0.3


@dataclass
class Task:
    """What a run learns: class names, the utterance ids of each split and their classes."""

    kind: str                  # "emotion" | "speaker": also the model file's kind
    labels: list[str]
    train: list[str]
    dev: list[str]
    test: list[str]
    targets: dict[str, int]    # utterance id -> class index
    report: tuple[str, ...]    # dev scores kept per epoch; the first picks the best epoch

    @property
    def metric(self) -> str:
        return self.report[0]


def make_task(cfg: TrainConfig, manifest: Manifest, protocol: Protocol) -> Task:
    """The task ``cfg.task`` names, on ``cfg.fold`` of the corpus (emotion) or on its
    speakers (speaker)."""
    if cfg.task == "speaker":
        return speaker_task(manifest, source=cfg.data)
    if cfg.task != "emotion":
        raise UserError(f"unknown task {cfg.task!r}: choose emotion or speaker")
    fold = protocol.fold(cfg.fold)
    from copypaste_ser.data.corpora.folds import check_fold
    check_fold(manifest, fold, cfg.data)  # one line now, not a traceback after epoch 1
    targets = {i: manifest.label_index(manifest[i].emotion) for i in fold.train + fold.dev + fold.test}
    return Task("emotion", list(manifest.labels), fold.train, fold.dev, fold.test, targets,
                ("weighted_f1", "uar"))


def held_out_split(manifest: Manifest, fraction: float = HELD_OUT_FRACTION) -> tuple[list[str], list[str]]:
    """(train ids, held-out ids), deterministic; see the module docstring."""
    by_speaker: dict[str, list[str]] = {}
    for u in manifest:
        by_speaker.setdefault(u.speaker, []).append(u.id)
    train, held = [], []
    for spk in sorted(by_speaker):
        ids = sorted(by_speaker[spk])
        if len(ids) < 2:
            train += ids
            continue
        k = min(max(1, math.ceil(fraction * len(ids))), len(ids) - 1)
        seed = int(hashlib.sha1(spk.encode()).hexdigest()[:8], 16)
        order = np.random.default_rng(seed).permutation(len(ids))
        held += [ids[i] for i in sorted(order[:k])]
        train += [ids[i] for i in sorted(order[k:])]
    return train, held


def speaker_task(manifest: Manifest, source: str = "corpus") -> Task:
    """The Task of speaker-ID pretraining: classes = every speaker of the corpus."""
    train, held = held_out_split(manifest)
    if not held:
        raise UserError(f"{source}: no speaker has two or more utterances, so none can be held out "
                        f"to measure speaker-ID accuracy")
    labels = manifest.speakers
    index = {s: i for i, s in enumerate(labels)}
    targets = {u.id: index[u.speaker] for u in manifest}
    return Task("speaker", labels, train, held, held, targets, ("accuracy",))
