"""Speaker-ID pretraining (paper 3.2.1): the x-vector style speaker classifier to fine-tune from.

The same thin ResNet-34 as the emotion model is trained to name the speaker of each
utterance of a speaker corpus (``prepare librispeech|voxceleb``); transfer.py then swaps its
output layer for an emotion layer. It runs through the one training loop of train.py with
``TrainConfig.task = "speaker"``, so run folder, resume (``last.pt``), ``history.jsonl``,
best-epoch ``model.pt`` (kind ``"speaker"``, labels = speaker ids) and DDP work as for
emotion training.

Held-out utterances (the dev split, also scored at the end) are a share of each speaker's
utterances (task.py: :func:`held_out_split`, :func:`speaker_task`). The best epoch is the
one with the highest held-out accuracy, and ``metrics.json`` reports that accuracy (and
top-5, evaluate.evaluate_speaker) on the same held-out utterances: a measure of the
pretraining, not an unbiased test.

Noise and music augmentation (the paper pretrains with it): ``noise_root`` adds the six
cached noisy copies of the training utterances that emotion training uses (noise and music
TRAIN pools at 10, 5 and 0 dB, ``augment.noise.training_copies``); ``noise_epoch_fraction``
draws a share of them per epoch. Deterministic and cached rather than on the fly, so an
epoch costs no extra feature extraction.
"""

from __future__ import annotations

from pathlib import Path

from copypaste_ser.training.config import make_config
from copypaste_ser.training.loop import train


def pretrain_speaker(data_dir: str | Path, out: str | Path, preset: str = "cpu", epochs: int | None = None,
                     batch_size: int | None = None, lr: float | None = None, chunk_seconds: float = 4.0,
                     noise_root: str | Path | None = None, noise_epoch_fraction: float | None = None,
                     seed: int = 0, threads: int = 0, width: int | None = None, force: bool = False,
                     progress: bool = True) -> dict:
    """Train a speaker classifier on a prepared speaker corpus; returns the held-out metrics
    (also in ``out/metrics.json``). ``out/model.pt`` is then a valid ``train --init``."""
    cfg = make_config(preset, data=str(Path(data_dir).resolve()), task="speaker", epochs=epochs,
                      batch_size=batch_size, lr=lr, chunk_seconds=chunk_seconds,
                      noise_aug=True if noise_root else None,
                      noise_root=str(Path(noise_root).resolve()) if noise_root else None,
                      noise_epoch_fraction=noise_epoch_fraction, seed=seed, threads=threads, width=width)
    return train(cfg, out, force=force, progress=progress)
