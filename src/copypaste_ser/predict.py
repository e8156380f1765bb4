"""Emotion of new audio files, whole or in windows along a long recording.

A file (or window) without speech gets ``emotion: None`` ("no speech") rather than an
invented emotion: silent or constant audio (audio.NoSignal), or no frame the energy VAD
calls voiced.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .audio import NoSignal, load_audio
from .checkpoint import load_model_file, resolve_model_path
from .features import FeatureConfig, energy_vad, frame_features, mfcc
from .inference import model_from_file, predict_proba
from .validation import WINDOW, check

#: Fewest voiced frames (0.1 s) a window needs to be given an emotion.
MIN_VOICED = 10


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

    def _no_speech(self, name: str, **extra) -> dict:
        return {"file": name, "emotion": None, "probs": {}, "speech": False, **extra}

    def __call__(self, files: Sequence[str | Path], window: float | None = None) -> list[dict]:
        """One result per file; with ``window`` seconds, one per window (hop = window / 2)."""
        check("--window", window, WINDOW)
        results = []
        for f in files:
            try:
                wave = load_audio(f, self.features.sample_rate)
            except NoSignal:
                results.append(self._no_speech(str(f)))
                continue
            feats, voiced = self._frames(wave)
            if window is not None:
                results += self._windows(str(f), feats, voiced, window)
                continue
            seconds = round(len(wave) / self.features.sample_rate, 2)
            if not voiced.any():
                results.append(self._no_speech(str(f), seconds=seconds))
                continue
            probs = self._proba([feats[voiced]])[0]
            results.append(self._result(str(f), probs, seconds=seconds))
        return results

    def _frames(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All frames and which of them the energy VAD keeps (features.compute_features' rule)."""
        feats = frame_features(wave, self.features)
        if not self.features.vad:
            return feats, np.ones(len(feats), bool)
        ref = feats if self.features.kind == "mfcc" else mfcc(wave, self.features)
        return feats, energy_vad(ref, self.features)[: len(feats)]

    def _proba(self, feats: list[np.ndarray]) -> np.ndarray:
        return predict_proba(self.model, feats, mean_norm=self.features.mean_norm)

    def _windows(self, name: str, feats: np.ndarray, voiced: np.ndarray, window: float) -> list[dict]:
        shift = self.features.frame_shift_ms / 1000
        size = max(1, int(round(window / shift)))
        hop = max(1, size // 2)
        starts = list(range(0, max(1, len(feats) - size + 1), hop))
        segs, kept = [], []
        for s in starts:
            seg = feats[s: s + size][voiced[s: s + size]]
            if len(seg) >= MIN_VOICED:  # fewer voiced frames: a window of silence, "no speech"
                segs.append(seg)
                kept.append(s)
        probs = dict(zip(kept, self._proba(segs))) if segs else {}
        span = {s: dict(start=round(s * shift, 2), end=round(min(s + size, len(feats)) * shift, 2)) for s in starts}
        return [self._result(name, probs[s], **span[s]) if s in probs else self._no_speech(name, **span[s])
                for s in starts]
