"""Emotion of new audio files, whole or in windows along a long recording."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .audio import load_audio
from .checkpoint import load_model_file, resolve_model_path
from .features import FeatureConfig, compute_features, energy_vad, frame_features, mfcc
from .inference import model_from_file, predict_proba


class EmotionPredictor:
    """Load once, predict many: ``EmotionPredictor("runs/cp1")(["a.wav"])``."""

    def __init__(self, run_or_model: str | Path):
        path = resolve_model_path(run_or_model)
        obj = load_model_file(path, kind="emotion")
        self.model = model_from_file(obj, str(path))
        self.labels: list[str] = list(obj["labels"])
        self.features = FeatureConfig.from_dict(obj["features"])

    def _result(self, name: str, probs: np.ndarray, **extra) -> dict:
        return {"file": name, "emotion": self.labels[int(probs.argmax())],
                "probs": {lab: round(float(p), 4) for lab, p in zip(self.labels, probs)}, **extra}

    def __call__(self, files: Sequence[str | Path], window: float | None = None) -> list[dict]:
        """One result per file; with ``window`` seconds, one per window (hop = window / 2)."""
        results = []
        for f in files:
            wave = load_audio(f, self.features.sample_rate)
            if window is None:
                probs = self._proba([compute_features(wave, self.features)])[0]
                results.append(self._result(str(f), probs, seconds=round(len(wave) / self.features.sample_rate, 2)))
                continue
            results += self._windows(str(f), wave, window)
        return results

    def _proba(self, feats: list[np.ndarray]) -> np.ndarray:
        return predict_proba(self.model, feats, mean_norm=self.features.mean_norm)

    def _windows(self, name: str, wave: np.ndarray, window: float) -> list[dict]:
        feats = frame_features(wave, self.features)
        voiced = (energy_vad(mfcc(wave, self.features), self.features)[: len(feats)] if self.features.vad
                  else np.ones(len(feats), bool))
        shift = self.features.frame_shift_ms / 1000
        size = max(1, int(round(window / shift)))
        hop = max(1, size // 2)
        starts = list(range(0, max(1, len(feats) - size + 1), hop))
        segs, kept = [], []
        for s in starts:
            seg = feats[s: s + size][voiced[s: s + size]]
            if len(seg) >= 10:  # windows of silence carry no emotion: skipped
                segs.append(seg)
                kept.append(s)
        if not segs:
            return [self._result(name, self._proba([feats])[0], start=0.0, end=len(feats) * shift)]
        probs = self._proba(segs)
        return [self._result(name, p, start=round(s * shift, 2), end=round((s + size) * shift, 2))
                for s, p in zip(kept, probs)]
