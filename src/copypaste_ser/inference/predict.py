"""Emotion of recordings of any length: a row for every window, and an answer for the file.

A file is read block by block (stream.py) and cut into windows that cover it to its end
(``--window`` seconds every ``--hop``; the last window is flush with the end). Each window
is scored alone, as a training utterance was (its own VAD and mean normalisation), and gets
a row; a window without speech (silent or constant audio, fewer than 10 voiced frames) is
marked ``speech: false`` with ``emotion: None`` rather than given an invented emotion. The
file's answer is the mean of its voiced windows' probabilities weighted by their voiced
duration. Probabilities are kept at full precision.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from copypaste_ser.errors import UserError
from copypaste_ser.inference.engines import (
    ENGINES,
    Bundle,
    OnnxEngine,
    TorchEngine,
    check_device,
    load_bundle,
)
from copypaste_ser.inference.stream import MIN_VOICED, check_audio_path, read_windows, wave_windows, window_frames
from copypaste_ser.validation import WINDOW, Number, OneOf, check

__all__ = ["EmotionPredictor", "MIN_VOICED", "DEFAULT_WINDOW"]

#: Seconds per window when none is given: the training chunk (TrainConfig.chunk_seconds).
DEFAULT_WINDOW = 4.0
VADS = ("energy", "silero", "auto")
HOP = Number(ge=0.01, le=3600, optional=True)
BATCH = Number(integer=True, ge=1, le=4096)


def check_options(window: float | None, hop: float | None, batch_size: int, engine: str, device: str,
                  vad: str) -> None:
    """Every predict option, before a model or a file is read."""
    check("--window", window, WINDOW)
    check("--hop", hop, HOP)
    if hop is not None and hop > (window or DEFAULT_WINDOW):
        raise UserError(f"--hop: must be at most the window ({window or DEFAULT_WINDOW:g} s), "
                        f"or windows leave gaps")
    check("--batch-size", batch_size, BATCH)
    check("--engine", engine, OneOf(ENGINES))
    check("--vad", vad, OneOf(VADS))
    check_device(device)
    if engine == "onnx" and device != "cpu":
        raise UserError(f"--device {device}: the onnx engine runs on the CPU here; use --engine torch for a GPU")


def _groups(items: Iterator, size: int) -> Iterator[list]:
    """``items`` in lists of ``size`` (the last may be shorter), read lazily."""
    group: list = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def _check_enrolment(bundle: Bundle, speaker_norm: str, enrol: Sequence | None, engine: str) -> None:
    """A speaker-normalised model needs the speaker's enrolment recordings, and only it takes them."""
    if speaker_norm != "none" and not enrol:
        what = "a few neutral sentences" if speaker_norm == "neutral-enrolment" else "some of their speech"
        raise UserError(f"{bundle.source}: was trained with speaker normalisation ({speaker_norm}), which needs the "
                        f"speaker's statistics: give {what} with --enrol FILE (repeatable), or score it on a "
                        f"prepared corpus with `copypaste-ser score`")
    if enrol and speaker_norm == "none":
        raise UserError(f"--enrol: {bundle.source} was trained without speaker normalisation; leave --enrol out")
    if enrol and engine == "onnx":
        raise UserError("--enrol: an enrolled model runs on the torch engine; leave --engine auto or give torch")


#: The file answer when no class reaches the predictor's ``min_confidence``.
UNCERTAIN = "uncertain"


class EmotionPredictor:
    """Load once, predict many: ``EmotionPredictor("runs/cp1")(["a.wav"])``; None = the shipped
    default model."""

    def __init__(self, run_or_model: str | Path | None = None, engine: str = "auto", device: str = "cpu",
                 batch_size: int = 32, vad: str = "energy", threads: int | None = None,
                 min_confidence: float | None = None, enrol: Sequence[str | Path] | None = None):
        check_options(None, None, batch_size, engine, device, vad)
        check("--min-confidence", min_confidence, Number(ge=0, le=1, optional=True))
        if threads is not None:  # the engine's threads: torch's, or the ONNX session's
            check("--threads", threads, Number(integer=True, ge=1, le=1024))
        self.bundle: Bundle = load_bundle(run_or_model)
        self.speaker_norm = (self.bundle.meta.get("train") or {}).get("speaker_norm", "none")
        _check_enrolment(self.bundle, self.speaker_norm, enrol, engine)
        if enrol:
            engine = "torch"  # the enrolled statistics live in the PyTorch model's buffers
        self.labels: list[str] = self.bundle.labels
        self.features = self.bundle.features
        # below this probability a file is answered "uncertain" (a shipped model may set its own)
        self.min_confidence = float(min_confidence if min_confidence is not None
                                    else self.bundle.meta.get("min_confidence", 0.0))
        self._tmp: tempfile.TemporaryDirectory | None = None
        if engine == "auto":  # the shipped ONNX file where there is one: several times faster on CPU
            engine = "onnx" if self.bundle.onnx_path is not None and device == "cpu" else "torch"
        if engine == "torch" and self.bundle.model is None:
            raise UserError(f"--engine torch: {self.bundle.source} is an ONNX model; use --engine onnx "
                            f"or give the run folder")
        if engine == "onnx":
            path = self.bundle.onnx_path
            if path is None:  # a PyTorch model: export it once for this predictor
                from copypaste_ser.inference.export import export_onnx
                self._tmp = tempfile.TemporaryDirectory(prefix="copypaste-ser-onnx-")
                path = export_onnx(self.bundle, Path(self._tmp.name) / "model.onnx")
            self.engine: Callable[[Sequence[np.ndarray]], np.ndarray] = OnnxEngine(self.bundle, path, batch_size,
                                                                                   threads)
        else:
            if threads is not None:
                import torch
                torch.set_num_threads(threads)
            self.engine = TorchEngine(self.bundle, batch_size, device)
        self.batch_size = batch_size
        self.voiced_fn = None
        if vad == "auto":  # silero where its wheel is installed: it tells speech from noise and music
            from copypaste_ser.inference.vad import silero_available
            vad = "silero" if silero_available() else "energy"
        self.vad = vad
        if vad == "silero":
            from copypaste_ser.inference.vad import SileroVAD
            self.voiced_fn = SileroVAD(self.features)
        if enrol:
            self.enrol(enrol)

    def enrol(self, files: Sequence[str | Path]) -> None:
        """Normalise with one speaker's statistics from ``files`` (a speaker-normalised model;
        inference/enrolment.py): every later file is taken to be that speaker's."""
        from copypaste_ser.inference.enrolment import check_enrollable, enrol, enrolment_statistics

        for f in files:
            check_audio_path(Path(f))
        model = self.bundle.model
        check_enrollable(model, self.bundle.source)
        if not hasattr(self, "_training_stats"):  # enrolling again starts from the trained buffers
            self._training_stats = (model.in_mean.clone(), model.in_std.clone())
        model.in_mean.copy_(self._training_stats[0])
        model.in_std.copy_(self._training_stats[1])
        enrol(model, *enrolment_statistics(model, self.features, files, DEFAULT_WINDOW, self.voiced_fn))

    # ------------------------------------------------------------ windows
    def windows(self, file: str | Path, window: float | None = None, hop: float | None = None,
                wave: np.ndarray | None = None, sample_rate: int | None = None) -> Iterator[dict]:
        """One row per window, in order, covering the file from 0 to its end; with ``wave`` (and
        its ``sample_rate``) those samples instead of a file, ``file`` naming them in the rows."""
        check("--window", window, WINDOW)
        check("--hop", hop, HOP)
        rate = self.features.sample_rate
        size = max(1, int(round((window or DEFAULT_WINDOW) * rate)))
        step = max(1, int(round((hop or window or DEFAULT_WINDOW) * rate)))
        if step > size:
            raise UserError(f"--hop: must be at most the window ({size / rate:g} s), or windows leave gaps")
        shift = self.features.frame_shift_ms / 1000
        pending: list[tuple[dict, np.ndarray]] = []
        source = (read_windows(file, rate, size, step) if wave is None
                  else wave_windows(wave, sample_rate or 0, rate, size, step, str(file)))
        for group in _groups(source, self.batch_size):
            for w, voiced_fn in zip(group, self._vad_functions([w.wave for w in group])):
                feats, voiced = window_frames(w.wave, self.features, voiced_fn)
                row = {"file": str(file), "level": "window", "start": w.start / rate, "end": w.end / rate,
                       "speech": voiced > 0, "voiced_seconds": voiced * shift, "emotion": None, "probs": {}}
                pending.append((row, feats))
                if sum(1 for r, _ in pending if r["speech"]) >= self.batch_size:
                    yield from self._score(pending)
                    pending = []
        yield from self._score(pending)

    def _vad_functions(self, waves: list[np.ndarray]) -> list[Callable | None]:
        """Each window's VAD: silero's chunk probabilities are computed for the whole group at
        once (one recurrent pass over a batch), the energy VAD inside window_frames."""
        batch = getattr(self.voiced_fn, "batch_chunk_probs", None)
        if batch is None:
            return [self.voiced_fn] * len(waves)
        frames = self.voiced_fn.frames
        return [lambda wave, n, p=probs: frames(p, n) for probs in batch(waves)]

    def _score(self, pending: list[tuple[dict, np.ndarray]]) -> Iterator[dict]:
        voiced = [(r, f) for r, f in pending if r["speech"]]
        if voiced:
            probs = self.engine([f for _, f in voiced])
            for (row, _), p in zip(voiced, probs):
                row["emotion"] = self.labels[int(p.argmax())]
                row["probs"] = {lab: float(v) for lab, v in zip(self.labels, p)}
        for row, _ in pending:
            yield row

    def summary(self, file: str | Path, rows: Sequence[dict]) -> dict:
        """The file's answer: voiced-duration-weighted mean of its voiced windows' probabilities."""
        end = max((r["end"] for r in rows), default=0.0)
        out = {"file": str(file), "level": "file", "start": 0.0, "end": end, "seconds": end,
               "windows": len(rows), "speech_windows": sum(r["speech"] for r in rows),
               "voiced_seconds": sum(r["voiced_seconds"] for r in rows if r["speech"]),
               "speech": any(r["speech"] for r in rows), "emotion": None, "probs": {}}
        if out["speech"]:
            weights = np.array([r["voiced_seconds"] for r in rows if r["speech"]])
            probs = np.array([[r["probs"][lab] for lab in self.labels] for r in rows if r["speech"]])
            mean = weights @ probs / weights.sum()
            out["emotion"] = self.labels[int(mean.argmax())] if mean.max() >= self.min_confidence else UNCERTAIN
            out["probs"] = {lab: float(v) for lab, v in zip(self.labels, mean)}
        return out

    def predict_file(self, file: str | Path, window: float | None = None, hop: float | None = None,
                     on_row: Callable[[dict], None] | None = None) -> tuple[list[dict], dict]:
        """Window rows (each also passed to ``on_row`` as it is made) and the file's answer."""
        rows = []
        for row in self.windows(file, window, hop):
            rows.append(row)
            if on_row is not None:
                on_row(row)
        return rows, self.summary(file, rows)

    def predict_wave(self, wave: np.ndarray, sample_rate: int, name: str = "<array>",
                     window: float | None = None, hop: float | None = None) -> tuple[list[dict], dict]:
        """As :meth:`predict_file` for samples in memory (float, mono or (samples, channels), any
        rate): ``rows, answer = predictor.predict_wave(samples, 44100)``."""
        rows = list(self.windows(name, window, hop, wave=wave, sample_rate=sample_rate))
        return rows, self.summary(name, rows)

    def __call__(self, files: Sequence[str | Path], window: float | None = None) -> list[dict]:
        """One answer per file; with ``window`` seconds, the window rows instead."""
        check("--window", window, WINDOW)
        results: list[dict] = []
        for f in files:
            rows, summary = self.predict_file(f, window)
            results += rows if window is not None else [summary]
        return results
