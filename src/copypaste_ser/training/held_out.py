"""Scores of a trained model on held-out utterances: emotion (weighted F1 and the rest of
metrics.score, with per-utterance predictions) or speaker ID (top-1, top-5). The loop calls
them when a run ends; evaluation/evaluate.py calls them for clean and noisy test sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from copypaste_ser.data.manifest import Manifest
from copypaste_ser.features.cache import extract_features
from copypaste_ser.features.mfcc import WaveTransform
from copypaste_ser.metrics import score
from copypaste_ser.models.scoring import predict_proba
from copypaste_ser.training.config import TrainConfig
from copypaste_ser.training.task import Task
from copypaste_ser.training.trainset import model_inputs

#: Noisy test sets decide their VAD on the noisy wave (feature_cache.extract_features ``vad_from``).
TEST_VAD = "noisy"


def evaluate_ids(model: torch.nn.Module, manifest: Manifest, ids: list[str], cfg: TrainConfig,
                 device: str | torch.device = "cpu", condition: str = "clean",
                 transform: WaveTransform | None = None, progress: bool = True) -> dict:
    store = model_inputs(extract_features(manifest.subset(ids), cfg.feature_config, Path(cfg.data),
                                          condition=condition, transform=transform, progress=progress,
                                          vad_from=TEST_VAD), manifest, ids, cfg)
    probs = predict_proba(model, [store[i] for i in ids], device, mean_norm=cfg.feature_config.mean_norm)
    y_true = [manifest.label_index(manifest[i].emotion) for i in ids]
    metrics = score(y_true, probs.argmax(1).tolist(), manifest.labels)
    metrics["condition"] = condition
    if transform is not None:
        metrics["vad"] = TEST_VAD  # results.csv column test_vad; reports flag rows without it
    metrics["predictions"] = [{"id": i, "true": manifest[i].emotion, "pred": manifest.labels[int(p.argmax())],
                               "probs": [round(float(v), 4) for v in p]} for i, p in zip(ids, probs)]
    return metrics


def evaluate_speaker(model: torch.nn.Module, manifest: Manifest, task: Task, cfg: TrainConfig,
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
