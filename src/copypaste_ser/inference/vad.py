"""Silero VAD for ``predict`` (``--vad auto``, the command's default, uses it where installed;
``--vad energy`` is the energy VAD of training).

The silero-vad wheel (MIT) ships its ONNX model (``silero_vad/data/silero_vad.onnx``); the
package itself is never imported (it depends on torch): the file is found and run with
onnxruntime. ``make install`` copies it, with its licence, into this package
(:func:`vendor_silero`), so a wheel built afterwards predicts with silero and without torch. The model scores 512-sample chunks (32 ms at 16 kHz) with 64 samples
of context and a recurrent state; a 10 ms feature frame is voiced when the chunk holding its
centre scores at least ``threshold``.
"""

from __future__ import annotations

import importlib.util
import shutil
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


#: Where ``make install`` puts the model file (and its licence) inside this package.
VENDORED = Path(__file__).resolve().parent / "pretrained" / "silero"


def _wheel_model() -> Path | None:
    """silero_vad.onnx inside the installed silero-vad wheel, without importing the package."""
    try:
        spec = importlib.util.find_spec("silero_vad")
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / "data" / "silero_vad.onnx"
        if path.is_file():
            return path
    return None


def silero_path() -> Path:
    if (VENDORED / "silero_vad.onnx").is_file():
        return VENDORED / "silero_vad.onnx"
    path = _wheel_model()
    if path is None:
        raise UserError(f"--vad silero: silero-vad is not installed; run `{PIP}` or use --vad energy")
    return path


def vendor_silero(dest: Path = VENDORED) -> Path:
    """Copy the silero-vad wheel's ONNX model and MIT licence into ``dest`` (``make install``)."""
    import importlib.metadata as md

    source = _wheel_model()
    if source is None:
        raise UserError(f"silero-vad is not installed, nothing to copy; run `{PIP}` first")
    dest.mkdir(parents=True, exist_ok=True)
    for name, src in (("silero_vad.onnx", source),
                      ("LICENSE", next((Path(str(f.locate())) for f in md.distribution("silero-vad").files or []
                                        if Path(str(f)).name == "LICENSE"), None))):
        if src is not None:
            tmp = dest / f".{name}.tmp"
            shutil.copyfile(src, tmp)
            tmp.replace(dest / name)
    return dest / "silero_vad.onnx"


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
        return self.batch_chunk_probs([wave])[0]

    def batch_chunk_probs(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """:meth:`chunk_probs` of each wave, waves of one length run as one batch (each with its
        own recurrent state; the same numbers as one by one, in a fraction of the calls)."""
        out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(waves)
        for length in sorted({len(w) for w in waves}):
            idx = [i for i, w in enumerate(waves) if len(w) == length]
            n = max(1, -(-length // CHUNK))
            padded = np.zeros((len(idx), n * CHUNK + CONTEXT), np.float32)
            for row, i in enumerate(idx):
                padded[row, CONTEXT: CONTEXT + length] = waves[i]  # zero context before the first chunk
            state = np.zeros((2, len(idx), 128), np.float32)
            sr = np.array(RATE, dtype=np.int64)
            probs = np.empty((len(idx), n), np.float32)
            for t in range(n):  # recurrent: one chunk after the other
                x = padded[:, t * CHUNK: (t + 1) * CHUNK + CONTEXT]
                prob, state = self.session.run(None, {"input": x, "state": state, "sr": sr})
                probs[:, t] = np.asarray(prob).reshape(len(idx))
            for row, i in enumerate(idx):
                out[i] = probs[row]
        return out

    def frames(self, probs: np.ndarray, n_frames: int) -> np.ndarray:
        """``(n_frames,) bool``: the feature frames whose centre lies in a chunk scored as speech."""
        centres = np.arange(n_frames) * self.shift + self.shift // 2  # Kaldi frames, snip_edges=False
        idx = np.minimum(centres // CHUNK, len(probs) - 1)
        return probs[idx] >= self.threshold

    def __call__(self, wave: np.ndarray, n_frames: int) -> np.ndarray:
        return self.frames(self.chunk_probs(wave), n_frames)
