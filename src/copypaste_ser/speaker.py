"""Speaker-ID pretraining (paper 3.2.1): the x-vector style speaker classifier to fine-tune from.

The same thin ResNet-34 as the emotion model is trained to name the speaker of each
utterance of a speaker corpus (``prepare librispeech|voxceleb``); transfer.py then swaps its
output layer for an emotion layer. It runs through the one training loop of train.py with
``TrainConfig.task = "speaker"``, so run folder, resume (``last.pt``), ``history.jsonl``,
best-epoch ``model.pt`` (kind ``"speaker"``, labels = speaker ids) and DDP work as for
emotion training.

Held-out utterances (the dev split, also scored at the end): a speaker corpus has one fold
with every utterance in train (manifest.SPEAKER_FOLD), and :func:`held_out_split` splits it
deterministically: each speaker with n >= 2 utterances gives ``ceil(0.3 n)`` of them (at
least 1, at most n - 1) to held-out, picked by a permutation seeded from the speaker id;
speakers with one utterance are train-only (they are still classes). The best epoch is the
one with the highest held-out accuracy, and ``metrics.json`` reports that accuracy (and
top-5) on the same held-out utterances: a measure of the pretraining, not an unbiased test.

Noise and music augmentation (the paper pretrains with it): ``noise_root`` adds the six
cached noisy copies of the training utterances that emotion training uses (noise and music
TRAIN pools at 10, 5 and 0 dB, ``augment.noise.training_copies``); ``noise_epoch_fraction``
draws a share of them per epoch. Deterministic and cached rather than on the fly, so an
epoch costs no extra feature extraction.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch

from .config import TrainConfig, make_config
from .errors import UserError
from .features import extract_features
from .inference import predict_proba
from .manifest import Manifest

#: Share of each speaker's utterances held out (rounded up; see held_out_split).
HELD_OUT_FRACTION = 0.3


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


def speaker_task(manifest: Manifest, source: str = "corpus"):
    """The train.Task of speaker-ID pretraining: classes = every speaker of the corpus."""
    from .train import Task

    train, held = held_out_split(manifest)
    if not held:
        raise UserError(f"{source}: no speaker has two or more utterances, so none can be held out "
                        f"to measure speaker-ID accuracy")
    labels = manifest.speakers
    index = {s: i for i, s in enumerate(labels)}
    targets = {u.id: index[u.speaker] for u in manifest}
    return Task("speaker", labels, train, held, held, targets, ("accuracy",))


def evaluate_speaker(model: torch.nn.Module, manifest: Manifest, task, cfg: TrainConfig,
                     device: str | torch.device = "cpu") -> dict:
    """Top-1 and top-5 speaker-ID accuracy on the held-out utterances."""
    store = extract_features(manifest.subset(task.test), cfg.feature_config, Path(cfg.data), progress=False)
    probs = predict_proba(model, [store[i] for i in task.test], device, mean_norm=cfg.feature_config.mean_norm)
    y = np.array([task.targets[i] for i in task.test])
    top5 = np.argsort(-probs, axis=1)[:, :5]
    return {"task": "speaker-id", "accuracy": float((probs.argmax(1) == y).mean()),
            "top5_accuracy": float((top5 == y[:, None]).any(1).mean()), "n": int(len(y)),
            "speakers": len(task.labels), "held_out_speakers": len({manifest[i].speaker for i in task.test}),
            "train_utterances": len(task.train)}


def pretrain_speaker(data_dir: str | Path, out: str | Path, preset: str = "cpu", epochs: int | None = None,
                     batch_size: int | None = None, lr: float | None = None, chunk_seconds: float = 4.0,
                     noise_root: str | Path | None = None, noise_epoch_fraction: float | None = None,
                     seed: int = 0, threads: int = 0, width: int | None = None, force: bool = False,
                     progress: bool = True) -> dict:
    """Train a speaker classifier on a prepared speaker corpus; returns the held-out metrics
    (also in ``out/metrics.json``). ``out/model.pt`` is then a valid ``train --init``."""
    from .train import train

    cfg = make_config(preset, data=str(Path(data_dir).resolve()), task="speaker", epochs=epochs,
                      batch_size=batch_size, lr=lr, chunk_seconds=chunk_seconds,
                      noise_aug=True if noise_root else None,
                      noise_root=str(Path(noise_root).resolve()) if noise_root else None,
                      noise_epoch_fraction=noise_epoch_fraction, seed=seed, threads=threads, width=width)
    return train(cfg, out, force=force, progress=progress)
