"""What ``copypaste-ser predict`` does with its options (cli.py only declares them)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from copypaste_ser.data.audio import audio_files
from copypaste_ser.errors import UserError
from copypaste_ser.files.outputs import check_output, check_outputs, record_outputs
from copypaste_ser.inference.predict import EmotionPredictor, check_options
from copypaste_ser.inference.pretrained import is_model_dir
from copypaste_ser.inference.stream import check_audio_path
from copypaste_ser.inference.timeline import FORMATS, RowWriter, plot_paths, plot_timeline
from copypaste_ser.validation import Number, check


#: Files that make a folder a run: its best model, and training/rundir.MARKER (named here, not
#: imported: training/ needs torch, which predict does without).
RUN_FILES = ("model.pt", ".copypaste-ser-run")


def is_model_folder(folder: Path) -> bool:
    """A run folder, or a model folder in the shipped format."""
    return is_model_dir(folder) or any((folder / name).exists() for name in RUN_FILES)


def audio_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; a folder stands for its .wav/.flac files (recursive, sorted by path)."""
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        if is_model_folder(path):
            raise UserError(f"{path}: is a model folder, not audio; give the model first (copypaste-ser "
                            f"predict {path} FILE.wav)")
        found = audio_files(path)
        if not found:
            raise UserError(f"{path}: no .wav or .flac files in this folder, and no model.pt; give audio files "
                            f"(other formats by file name) or a run folder")
        files.extend(found)
    return files


def model_and_files(paths: list[Path], model: Path | None) -> tuple[Path | None, list[Path]]:
    """``predict RUN a.wav``, ``predict a.wav`` or ``predict FOLDER``: the first path is the model
    when it looks like one (a run or model folder, .pt, .onnx, or a name without an extension)
    and audio files or folders follow; with no model, the shipped default model answers."""
    if model is not None:
        return model, audio_inputs(paths)
    first = paths[0]
    looks_like_model = (is_model_folder(first) if first.is_dir() else
                        first.suffix in (".pt", ".onnx") or (not first.exists() and not first.suffix))
    if not looks_like_model:
        return None, audio_inputs(paths)
    if len(paths) == 1:
        raise UserError(f"{first}: is a model; give audio files after it (copypaste-ser predict {first} FILE.wav)")
    return first, audio_inputs(paths[1:])


def line(r: dict) -> str:
    """A row for people: ``file [0.0-4.0 s]: angry  (angry 61 % ...)`` or ``...: no speech``."""
    span = f" [{r['start']:.1f}-{r['end']:.1f} s]" if r["level"] == "window" else ""
    if r["emotion"] is None:  # silence, a constant signal, or too few voiced frames
        return f"{r['file']}{span}: no speech"
    probs = " ".join(f"{k} {100 * v:.0f} %" for k, v in r["probs"].items())  # --json keeps fractions
    return f"{r['file']}{span}: {r['emotion']}  ({probs})"


def tally(answers: list[str | None]) -> str:
    """``3 files: neutral 2 (67 %), no speech 1 (33 %)``, commonest first."""
    counts = Counter("no speech" if a is None else a for a in answers)
    parts = ", ".join(f"{k} {n} ({100 * n / len(answers):.0f} %)" for k, n in counts.most_common())
    return f"{len(answers)} files: {parts}"


def run_predict(paths: list[Path], model: Path | None, *, window: float | None, hop: float | None, engine: str,
                device: str, batch_size: int, vad: str, out: Path | None, plot: Path | None, as_json: bool,
                echo: Callable[[str], None] = print, force: bool = False, threads: int | None = None,
                min_confidence: float | None = None, enrol: list[Path] | None = None) -> None:
    """Every option checked before the model is read; window rows echoed only with ``--window``
    (a 3 h file has thousands: they go to ``--out``); the file's answer always, and for several
    files a closing count of the answers."""
    check_options(window, hop, batch_size, engine, device, vad)
    check("--min-confidence", min_confidence, Number(ge=0, le=1, optional=True))
    if out is not None and out.suffix.lower() not in FORMATS:
        raise UserError(f"--out: {out}: the file name must end in .jsonl or .csv")
    source, files = model_and_files(paths, model)
    enrol = audio_inputs(enrol) if enrol else enrol
    for f in [*files, *(enrol or [])]:  # every file before the model is read: no answer for some, then an error
        check_audio_path(Path(f))
    if out is not None:
        check_output(out, force, "--out")
    if plot is not None:
        check_outputs(plot_paths(plot, files), force, "--plot")
    predictor = EmotionPredictor(source, engine=engine, device=device, batch_size=batch_size, vad=vad, threads=threads,
                                 min_confidence=min_confidence, enrol=enrol)
    writer = RowWriter(out, predictor.labels) if out is not None else None
    written: list[Path] = []

    def show(r: dict) -> None:
        echo(json.dumps(r) if as_json else line(r))

    def on_row(r: dict) -> None:
        if writer is not None:
            writer.write(r)
        if window is not None:
            show(r)

    ok = False
    answers: list[str | None] = []
    try:
        pngs = plot_paths(plot, files) if plot is not None else []
        for k, f in enumerate(files):
            rows, summary = predictor.predict_file(f, window, hop, on_row=on_row)
            if writer is not None:
                writer.write(summary)
            show(summary)
            answers.append(summary["emotion"])
            if plot is not None:
                written.append(plot_timeline(rows, predictor.labels, pngs[k], Path(f).name, summary))
        ok = True
        if len(files) > 1 and not as_json:  # JSON lines stay one object per line
            echo(tally(answers))
    finally:
        if writer is not None:
            writer.close(keep=ok)  # a failure on any file leaves --out as it was
            if ok:
                written.append(out)
        record_outputs(written)
