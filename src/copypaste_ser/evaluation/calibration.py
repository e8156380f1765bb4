"""Temperature scaling (Guo et al., 2017): one number that makes a model's confidences honest.

``fit_temperature(probs, labels)`` finds T > 0 minimising the negative log-likelihood of
``softmax(log(probs) / T)`` on held-out (dev) utterances; the argmax, and so every score, is
unchanged. ``run_temperature(run)`` fits it on a run's own dev speakers. A shipped model stores
T in its model.json (``temperature``), and ``predict`` divides the logits by it; with
``min_confidence`` there, a file whose best class is less likely than that is answered
"uncertain" instead of a guess.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from copypaste_ser.errors import UserError


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def fit_temperature(probs: np.ndarray, labels: list[int] | np.ndarray) -> float:
    """The temperature (0.05-20) that best calibrates these class probabilities."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    if len(probs) < 10:
        raise UserError(f"calibration needs at least 10 dev utterances, got {len(probs)}")
    logits = np.log(np.clip(probs, 1e-12, 1.0))
    found = minimize_scalar(lambda log_t: nll(logits, labels, float(np.exp(log_t))),
                            bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(found.x))


def run_temperature(run_dir: str | Path) -> float:
    """Fit the temperature of a trained run on its fold's dev speakers."""
    from copypaste_ser.data.manifest import load_corpus
    from copypaste_ser.evaluation.evaluate import load_run
    from copypaste_ser.features.cache import extract_features
    from copypaste_ser.models.scoring import predict_proba
    from copypaste_ser.training.task import make_task
    from copypaste_ser.training.trainset import model_inputs

    model, _, cfg = load_run(run_dir)
    manifest, protocol = load_corpus(Path(cfg.data))
    task = make_task(cfg, manifest, protocol)
    store = model_inputs(extract_features(manifest.subset(task.dev), cfg.feature_config, Path(cfg.data),
                                          progress=False), manifest, task.dev, cfg)
    probs = predict_proba(model, [store[i] for i in task.dev], mean_norm=cfg.feature_config.mean_norm)
    return fit_temperature(probs, [task.targets[i] for i in task.dev])
