"""Silero VAD for ``predict`` (``--vad auto``, the command's default, uses it where installed;
``--vad energy`` is the energy VAD of training).

The silero-vad wheel (MIT) ships its ONNX model (``silero_vad/data/silero_vad.onnx``); the
package itself is never imported (its audio helpers want torchaudio): the file is found and
run with onnxruntime. The model scores 512-sample chunks (32 ms at 16 kHz) with 64 samples
of context and a recurrent state; a 10 ms feature frame is voiced when the chunk holding its
centre scores at least ``threshold``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from copypaste_ser.errors import UserError
from copypaste_ser.features.mfcc import FeatureConfig

PIP = "pip install silero-vad==6.2.3"
CHUNK, CONTEXT, RATE = 512, 64, 16000


def silero_available() -> bool:
    try:
        silero_path()
    except UserError:
        return False
    return True


def silero_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / "data" / "silero_vad.onnx"
        if path.is_file():
            return path
    raise UserError(f"--vad silero: silero-vad is not installed; run `{PIP}` or use --vad energy")


class SileroVAD:
    """``vad(wave, n_frames) -> (n_frames,) bool``: which feature frames hold speech."""

    def __init__(self, features: FeatureConfig, threshold: float = 0.5):
        from copypaste_ser.inference.engines import onnx_session

        if features.sample_rate != RATE:
            raise UserError(f"--vad silero: needs {RATE} Hz features, the model uses {features.sample_rate} Hz")
        self.session = onnx_session(silero_path(), threads=1)
        self.shift = int(features.frame_shift_ms * RATE / 1000)
        self.threshold = threshold

    def chunk_probs(self, wave: np.ndarray) -> np.ndarray:
        """Speech probability of each 512-sample chunk (the last one zero-padded)."""
        n = -(-len(wave) // CHUNK)
        padded = np.zeros(n * CHUNK + CONTEXT, np.float32)
        padded[CONTEXT: CONTEXT + len(wave)] = wave  # zero context before the first chunk
        state = np.zeros((2, 1, 128), np.float32)
        sr = np.array(RATE, dtype=np.int64)
        out = np.empty(n, np.float32)
        for i in range(n):  # recurrent: one chunk after the other
            x = padded[i * CHUNK: (i + 1) * CHUNK + CONTEXT][None]
            prob, state = self.session.run(None, {"input": x, "state": state, "sr": sr})
            out[i] = float(np.asarray(prob).reshape(-1)[0])
        return out

    def __call__(self, wave: np.ndarray, n_frames: int) -> np.ndarray:
        probs = self.chunk_probs(wave)
        centres = np.arange(n_frames) * self.shift + self.shift // 2  # Kaldi frames, snip_edges=False
        idx = np.minimum(centres // CHUNK, len(probs) - 1)
        return probs[idx] >= self.threshold
