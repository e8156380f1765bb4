"""Score a trained run on clean or noisy test data, and probe the CopyPaste hypothesis.

``evaluate_run(run, snr=10)`` corrupts every test utterance with a clip from the test pool
of the noise corpus (deterministic for a seed, so every model hears the same noisy items);
the features and their VAD come from the noisy audio alone, as a deployed system meets it
(features.py; ``metrics["vad"] == "noisy"``), and writes
``eval/<condition>/{metrics.json, confusion.png, predictions.jsonl}``.
:func:`evaluate_speaker` scores a speaker-ID model on its held-out utterances (top-1, top-5).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from copypaste_ser.data.manifest import SPLITS, Manifest, load_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.conditions import noisy_condition
from copypaste_ser.features.cache import extract_features
from copypaste_ser.features.mfcc import FROZEN_KINDS, FeatureConfig, encode_inputs
from copypaste_ser.files.atomic import atomic_write_text
from copypaste_ser.metrics import plot_confusion
from copypaste_ser.models.checkpoint import load_model_file, resolve_model_path
from copypaste_ser.models.placement import place
from copypaste_ser.models.scoring import model_from_file, predict_proba
from copypaste_ser.training.config import TrainConfig
from copypaste_ser.training.held_out import evaluate_ids, evaluate_speaker  # noqa: F401 (evaluate_speaker: API)
from copypaste_ser.training.rundir import evaluation_dir
from copypaste_ser.training.trainset import model_inputs
from copypaste_ser.validation import SEED, SNR, OneOf, check


def load_run(run_dir: str | Path) -> tuple[torch.nn.Module, dict, TrainConfig]:
    path = resolve_model_path(run_dir)
    obj = load_model_file(path, kind="emotion")
    return place(model_from_file(obj, str(path))), obj, TrainConfig.from_dict(obj["train"], str(path))


def evaluate_run(run_dir: str | Path, snr: float | None = None, noise_root: str | None = None,
                 seed: int = 0, split: str = "test", probe: str | None = None,
                 progress: bool = True) -> dict:
    """Score ``run_dir``'s best model on its fold's ``split``, clean or at ``snr`` dB."""
    if snr is not None:  # every option before the run is read
        check("--snr", snr, SNR)
    check("--split", split, OneOf(SPLITS))
    check("--probe", probe, OneOf(("concat",), optional=True))
    check("--seed", seed, SEED)
    run_dir = Path(run_dir)
    model, obj, cfg = load_run(run_dir)
    manifest, protocol = load_corpus(Path(cfg.data))
    ids = protocol.fold(cfg.fold).split(split)
    condition, transform = "clean", None
    if snr is not None:
        root = noise_root or cfg.noise_root
        if not root:
            raise UserError(f"{run_dir}: --snr needs --noise-root (a folder in MUSAN layout)")
        prefix, transform = noisy_condition(root, Path(cfg.data), snr, seed)
        condition = prefix + transform.name
    metrics = evaluate_ids(model, manifest, ids, cfg, condition=condition, transform=transform,
                           progress=progress)
    metrics["split"] = split
    if probe == "concat":
        metrics["probe"] = concat_probe(model, manifest, ids, cfg, seed=seed)
    name = condition if split == "test" else f"{split}-{condition}"
    out = evaluation_dir(run_dir, name)
    preds = metrics.pop("predictions")
    atomic_write_text(out / "predictions.jsonl", "".join(json.dumps(p) + "\n" for p in preds))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1))
    plot_confusion(metrics, out / "confusion.png", f"{manifest.name} {name}, weighted F1 {metrics['weighted_f1']:.3f}")
    metrics["output"] = str(out)
    return metrics


def has_probe_pair(manifest: Manifest, ids: list[str]) -> bool:
    """Whether ``ids`` hold an emotional and a neutral utterance of different speakers, which
    :func:`concat_probe` needs (not so in a one-speaker test fold, or without a neutral label)."""
    if manifest.neutral is None:
        return False
    neutral_speakers = {manifest[i].speaker for i in ids if manifest[i].emotion == manifest.neutral}
    return any(manifest[i].emotion != manifest.neutral and neutral_speakers - {manifest[i].speaker} for i in ids)


def exact_concatenations(feats: list[np.ndarray], features: FeatureConfig) -> list[np.ndarray]:
    """Concatenated frames as the model would compute them from the joined audio: MFCC and mel
    frames are frame-local, so joining them is exact; encoder states are not (an LSTM's second
    piece depends on the first, a transformer hears the whole input), so their raw input part
    (mel frames, Whisper's log-mel rows, waveform rows) is encoded again, as in training
    (augment/reencode.py)."""
    if features.kind not in FROZEN_KINDS:
        return feats
    raw = [f[:, : features.input_dim] for f in feats]
    return [np.concatenate([r, s], axis=1).astype(np.float32, copy=False)
            for r, s in zip(raw, encode_inputs(raw, features))]


def probe_applies(cfg: TrainConfig) -> bool:
    """Whether the concat probe means what it says for this model: not for a speaker-normalised
    encoder model, whose joins are re-encoded (no speaker's statistics fit a join)."""
    return cfg.speaker_norm == "none" or cfg.feature_config.kind not in FROZEN_KINDS


def concat_probe(model: torch.nn.Module, manifest: Manifest, ids: list[str], cfg: TrainConfig,
                 seed: int = 0) -> dict:
    """Concatenate each emotional test utterance with a neutral test utterance of another speaker
    (random order) and count how often the model still names the emotion.

    Reported next to the recall of the same emotional utterances heard alone.
    """
    if manifest.neutral is None:
        raise UserError(f"{cfg.data}: corpus has no neutral label; the concat probe needs one")
    if not has_probe_pair(manifest, ids):
        raise UserError(f"{cfg.data}: the test split has no emotional/neutral pair of different speakers")
    if not probe_applies(cfg):
        raise UserError(f"{cfg.data}: the concat probe encodes each join anew, and with speaker_norm a join of two "
                        f"speakers has no speaker's statistics; it is not run for such a model")
    store = model_inputs(extract_features(manifest.subset(ids), cfg.feature_config, Path(cfg.data), progress=False),
                         manifest, ids, cfg)
    neutral = [i for i in ids if manifest[i].emotion == manifest.neutral]
    emotional = [i for i in ids if manifest[i].emotion != manifest.neutral]
    rng = np.random.default_rng(seed)
    pairs, feats = [], []
    for i in emotional:
        others = [j for j in neutral if manifest[j].speaker != manifest[i].speaker]
        if not others:
            continue
        j = others[int(rng.integers(len(others)))]
        parts = [store[i], store[j]] if rng.random() < 0.5 else [store[j], store[i]]
        pairs.append((i, j))
        feats.append(np.concatenate(parts))
    feats = exact_concatenations(feats, cfg.feature_config)
    labels = [manifest.label_index(manifest[i].emotion) for i, _ in pairs]
    norm = cfg.feature_config.mean_norm
    pred_concat = predict_proba(model, feats, mean_norm=norm).argmax(1)
    pred_alone = predict_proba(model, [store[i] for i, _ in pairs], mean_norm=norm).argmax(1)
    hit_concat = pred_concat == np.array(labels)
    hit_alone = pred_alone == np.array(labels)
    neutral_idx = manifest.label_index(manifest.neutral)
    return {"pairs": len(pairs),
            "emotion_kept_concat": float(hit_concat.mean()),
            "emotion_recall_alone": float(hit_alone.mean()),
            "kept_when_right_alone": float(hit_concat[hit_alone].mean()) if hit_alone.any() else None,
            "called_neutral_concat": float((pred_concat == neutral_idx).mean())}
