"""Streaming ``predict`` over long recordings: wall time and peak memory, PyTorch vs ONNX.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_predict.py [--minutes 10 60 180] [--out docs/benchmarks-predict.md]

Audio: real speech from ../shared/data (EmoDB and RAVDESS, 16 kHz) concatenated over and over
to the length wanted (synthetic voiced-like tones when ../shared is absent), written block by
block to FLAC. Models: ``--shipped``: the shipped default (``whisper-attention``: frozen
Whisper-base blocks 0-3 + attention head); else random-weight models (speed does not depend on
the weights): the 0.2 default's architecture (frozen Resemblyzer LSTM + attention head)
and the paper's thin ResNet-34 at the ``cpu`` preset. Each run is the whole command
``copypaste-ser predict MODEL FILE --engine E --out rows.jsonl`` in a fresh process (start-up
and model loading included), the model in the shipped format (pretrained.save.save_default:
safetensors + model.onnx); peak memory is that process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RATE = 16000


def speech_source() -> list[np.ndarray]:
    files = sorted((SHARED / "emodb-full" / "wav").glob("*.flac")) + sorted((SHARED / "ravdess").rglob("*.flac"))
    if files:
        return [sf.read(f, dtype="float32")[0] for f in files[:400]]
    rng = np.random.default_rng(0)  # no ../shared: voiced-like tones with pauses
    t = np.arange(3 * RATE) / RATE
    return [(0.2 * np.sin(2 * np.pi * (120 + 40 * k) * t) * (np.sin(2 * np.pi * 1.1 * t) > -0.3)
             + 0.003 * rng.standard_normal(len(t))).astype(np.float32) for k in range(4)]


def make_audio(path: Path, seconds: int, clips: list[np.ndarray]) -> Path:
    if path.is_file():
        return path
    with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as f:
        left, i = seconds * RATE, 0
        while left > 0:
            clip = clips[i % len(clips)][:left]
            f.write(clip)
            left -= len(clip)
            i += 1
    return path


def make_models(folder: Path) -> dict[str, Path]:
    from copypaste_ser.features.encoders import resemblyzer_available
    from copypaste_ser.features.mfcc import FeatureConfig, resemblyzer_states_features
    from copypaste_ser.inference.pretrained.save import save_default
    from copypaste_ser.models import ModelConfig, build_model
    from copypaste_ser.models.checkpoint import FORMAT, save_atomic

    labels = ["angry", "happy", "neutral", "sad"]
    models = {}
    if resemblyzer_available():
        from copypaste_ser.models.encoder_head import EncoderAttentionEmotion, EncoderHeadConfig
        head = EncoderAttentionEmotion(EncoderHeadConfig(num_classes=4))
        models["resemblyzer-attention"] = (head, resemblyzer_states_features())
    resnet = build_model(ModelConfig.from_preset("cpu", 4))
    models["thin-resnet34 (cpu preset)"] = (resnet, FeatureConfig())
    out = {}
    for name, (model, feats) in models.items():
        arch = getattr(model, "arch", "thin-resnet34")
        path = folder / f"{arch}.pt"
        save_atomic({"format": FORMAT, "kind": "emotion", "model": {"arch": arch, "config": model.config.to_dict()},
                     "labels": labels, "corpus": "bench", "features": feats.to_dict(),
                     "provenance": {"init": "random"}, "state_dict": model.state_dict()}, path)
        # the shipped format, as the default model ships: safetensors + model.onnx beside it
        out[name] = save_default(path, folder / arch)
    return out


def run(model: Path | None, audio: Path, engine: str, rows: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MiB) of one ``predict`` process (``model`` None: the
    shipped one). CPU seconds (user + system) hardly depend on other jobs sharing the machine;
    on a quiet machine with N cores the wall time cannot be below CPU / N."""
    cmd = [sys.executable, "-m", "copypaste_ser", "predict", *([str(model)] if model else []), str(audio),
           "--engine", engine, "--out", str(rows)]
    rows.unlink(missing_ok=True)  # predict never replaces a file without --force
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, nargs="+", default=[10, 60, 180])
    ap.add_argument("--torch-minutes", type=int, nargs="+", default=[10, 60],
                    help="lengths for the torch engine (slow under MKL_CBWR=AUTO,STRICT)")
    ap.add_argument("--resnet-minutes", type=int, nargs="+", default=[10], help="lengths for the ResNet")
    ap.add_argument("--engines", nargs="+", default=["torch", "onnx"])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "copypaste-ser-bench")
    ap.add_argument("--out", type=Path, default=None, help="Markdown table to write")
    ap.add_argument("--shipped", action="store_true",
                    help="only the shipped default model (`predict FILE`, no model argument)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    clips = speech_source()
    models = {"default model (shipped, whisper-attention)": None} if args.shipped else make_models(args.work)
    load = os.getloadavg()[0]
    lines = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, torch {torch.__version__}; "
             f"load average {load:.2f} at the start" + (" (shared: other jobs were running)" if load > 1.5 else ""),
             "", "| model | audio | engine | wall (s) | x real time | CPU (s) | peak RSS (MiB) |",
             "|---|---|---|---:|---:|---:|---:|"]
    for name, model in models.items():
        lengths = args.minutes if model is None or "resemblyzer" in name else args.resnet_minutes
        for minutes in lengths:
            audio = make_audio(args.work / f"speech-{minutes}min.flac", minutes * 60, clips)
            for engine in args.engines:
                if engine == "torch" and minutes not in args.torch_minutes:
                    continue
                wall, cpu, rss = run(model, audio, engine, args.work / "rows.jsonl")
                line = (f"| {name} | {minutes} min | {engine} | {wall:.1f} | {minutes * 60 / wall:.0f} | {cpu:.1f} "
                        f"| {rss:.0f} |")
                print(line, flush=True)
                lines.append(line)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
