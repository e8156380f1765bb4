"""Streaming predict: windows cover a file to its end, padding never changes a score, ONNX
agrees with PyTorch, the shipped-model format round-trips, outputs and CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from copypaste_ser.features.encoders import resemblyzer_available
from copypaste_ser.features.mfcc import FeatureConfig, compute_features, mean_normalize
from copypaste_ser.inference.engines import TorchEngine, load_bundle
from copypaste_ser.inference.predict import EmotionPredictor
from copypaste_ser.inference.stream import read_windows, window_frames, window_spans
from copypaste_ser.models import ModelConfig, build_model
from copypaste_ser.models.checkpoint import FORMAT, save_atomic

LABELS = ["neutral", "angry", "happy", "sad"]
RATE = 16000


def _speechish(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced-like signal: a 150-250 Hz harmonic tone switching on and off, with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 150 + 50 * np.sin(2 * np.pi * 0.3 * t)
    tone = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / RATE) / k for k in range(1, 6))
    gate = np.sin(2 * np.pi * 1.3 * t) > -0.3
    return (0.2 * tone * gate + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory) -> Path:
    """A tiny ResNet model file with random weights and non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_preset("tiny", 4)).eval()
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return save_resnet_file(model, tmp_path_factory.mktemp("model") / "model.pt")


def save_resnet_file(model: torch.nn.Module, path: Path, features: FeatureConfig = FeatureConfig()) -> Path:
    """A model file (as a run saves it) of a random-weight ResNet with the four LABELS."""
    save_atomic({"format": FORMAT, "kind": "emotion", "model": {"arch": "thin-resnet34",
                 "config": model.config.to_dict()}, "labels": LABELS, "corpus": "test",
                 "features": features.to_dict(), "provenance": {"init": "random"},
                 "state_dict": model.state_dict()}, path)
    return path


# ---------------------------------------------------------------- windows cover the file
@pytest.mark.parametrize("size, hop", [(4.0, 4.0), (4.0, 2.0), (3.3, 1.7), (2.0, 0.5)])
def test_window_spans_cover_three_hours_without_a_gap(size: float, hop: float):
    n = 3 * 3600 * RATE + 12345
    spans = window_spans(n, int(size * RATE), int(hop * RATE))
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(b[0] <= a[1] and b[0] > a[0] for a, b in zip(spans, spans[1:]))  # no gap, moving on
    assert {e - s for s, e in spans} == {int(size * RATE)}
    assert window_spans(100, 400, 400) == [(0, 100)]  # shorter than a window: the whole file


def test_read_windows_match_the_spans_and_the_samples(tmp_path: Path):
    wave = _speechish(23.3)
    sf.write(tmp_path / "a.wav", wave, RATE, subtype="FLOAT")
    import copypaste_ser.inference.stream as stream
    old, stream.BLOCK = stream.BLOCK, 7000  # many blocks, windows straddling them
    try:
        got = list(read_windows(tmp_path / "a.wav", RATE, 4 * RATE, 3 * RATE))
    finally:
        stream.BLOCK = old
    assert [(w.start, w.end) for w in got] == window_spans(len(wave), 4 * RATE, 3 * RATE)
    for w in got:
        np.testing.assert_array_equal(w.wave, wave[w.start: w.end])


def test_three_hour_file_gives_rows_from_0_to_the_end(tmp_path: Path, tiny_model_file: Path):
    """3 h of near-silence with a speech-like burst, written block by block (FLAC keeps it small)."""
    path, total = tmp_path / "long.flac", 3 * 3600 * RATE + 777
    with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as f:
        for start in range(0, total, 600 * RATE):
            block = np.zeros(min(600 * RATE, total - start), np.float32)
            if start == 600 * RATE:  # 10 min in: 6 s of "speech"
                block[: 6 * RATE] = _speechish(6)
            f.write(block)
    rows, summary = EmotionPredictor(tiny_model_file).predict_file(path)
    assert rows[0]["start"] == 0 and rows[-1]["end"] == pytest.approx(total / RATE)
    assert all(b["start"] <= a["end"] for a, b in zip(rows, rows[1:]))
    speech = [r for r in rows if r["speech"]]
    assert 1 <= len(speech) <= 3 and all(600 <= r["start"] < 606 for r in speech)
    assert summary["speech"] and summary["emotion"] in LABELS and summary["windows"] == len(rows)
    assert summary["probs"] == pytest.approx(speech[0]["probs"]) if len(speech) == 1 else True


def test_window_features_are_the_training_features():
    """A window is featurised as compute_features does a training file, then mean-normalised."""
    wave = _speechish(3.0, seed=3)
    cfg = FeatureConfig()
    feats, voiced = window_frames(wave, cfg)
    np.testing.assert_allclose(feats, mean_normalize(compute_features(wave, cfg)), atol=1e-5)
    assert voiced == len(feats)
    assert window_frames(np.zeros(RATE, np.float32), cfg)[1] == 0  # silence: no speech
    assert window_frames(1e-4 * _speechish(1.0), cfg)[1] == 0      # faint hum: below the level floor


@pytest.mark.parametrize("n", [400, 401, 1777, 16000, 64123])
def test_fast_log_energy_is_kaldis_c0(n: int):
    from copypaste_ser.features.mfcc import mfcc
    from copypaste_ser.inference.stream import log_energy

    wave = _speechish(n / RATE + 0.01, seed=n)[:n]
    wave[: n // 3] *= 1e-3  # quiet and loud frames
    np.testing.assert_allclose(log_energy(wave, FeatureConfig()), mfcc(wave, FeatureConfig())[:, 0], atol=1e-4)


def test_mel_window_features_are_the_training_features():
    from copypaste_ser.features.mfcc import resemblyzer_features

    wave = _speechish(3.0, seed=4)
    cfg = resemblyzer_features()
    feats, voiced = window_frames(wave, cfg)
    np.testing.assert_allclose(feats, compute_features(wave, cfg), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- padding and engines
def test_padding_does_not_change_a_window_score(tiny_model_file: Path):
    engine = TorchEngine(load_bundle(tiny_model_file), batch_size=8)
    rng = np.random.default_rng(0)
    short = rng.standard_normal((37, 23)).astype(np.float32)
    longer = [rng.standard_normal((n, 23)).astype(np.float32) for n in (120, 64, 400)]
    alone = engine([short])[0]
    assert np.array_equal(engine([short, *longer])[0], alone)  # never padded: bit-identical
    twin = rng.standard_normal((37, 23)).astype(np.float32)   # a same-length mate: batched, unpadded
    np.testing.assert_allclose(engine([short, twin, *longer])[0], alone, atol=1e-6)


def test_onnx_matches_pytorch_for_the_tiny_resnet(tmp_path: Path, tiny_model_file: Path):
    from copypaste_ser.inference.engines import OnnxEngine
    from copypaste_ser.inference.export import export_onnx

    onnx_path = export_onnx(tiny_model_file, tmp_path / "m.onnx")
    bundle = load_bundle(onnx_path)
    assert bundle.labels == LABELS and bundle.features == FeatureConfig()
    rng = np.random.default_rng(1)
    feats = [rng.standard_normal((n, 23)).astype(np.float32) for n in (11, 50, 50, 333, 1000)]
    ref = TorchEngine(load_bundle(tiny_model_file), batch_size=4)(feats)
    np.testing.assert_allclose(OnnxEngine(bundle, onnx_path, batch_size=4)(feats), ref, atol=1e-4)


def test_export_keeps_an_existing_onnx_file_and_forced_replaces_only_its_own(tmp_path: Path, tiny_model_file: Path):
    from test_bad_input import run_cli

    target = tmp_path / "m.onnx"
    target.write_bytes(b"the user's own file")
    code, out = run_cli(["export", str(tiny_model_file), "--onnx", str(target)])
    assert code != 0 and "already exists; pass --force" in out and "Traceback" not in out
    assert target.read_bytes() == b"the user's own file"
    code, out = run_cli(["export", str(tiny_model_file), "--onnx", str(target), "--force"])
    assert code == 2 and "is not an ONNX export of copypaste-ser" in out and "Traceback" not in out
    assert target.read_bytes() == b"the user's own file"  # --force replaces only the tool's own files
    mine = tmp_path / "export.onnx"
    assert run_cli(["export", str(tiny_model_file), "--onnx", str(mine)])[0] == 0
    code, out = run_cli(["export", str(tiny_model_file), "--onnx", str(mine), "--force"])
    assert code == 0 and load_bundle(mine).labels == LABELS


@pytest.mark.skipif(not resemblyzer_available(), reason="needs the resemblyzer wheel's weights")
@pytest.mark.parametrize("pooling,tuned_layers", [("attention", 0), ("meanstd", 1)])
def test_onnx_matches_pytorch_for_the_encoder_head_with_mel_input(tmp_path: Path, pooling: str, tuned_layers: int):
    from copypaste_ser.features.encoders import shared_encoder
    from copypaste_ser.features.mfcc import resemblyzer_states_features
    from copypaste_ser.inference.engines import Bundle, OnnxEngine
    from copypaste_ser.inference.export import export_onnx
    from copypaste_ser.models.encoder_head import EncoderAttentionEmotion, EncoderHeadConfig

    torch.manual_seed(0)
    model = EncoderAttentionEmotion(EncoderHeadConfig(num_classes=4, heads=4, proj_dim=32, embed_dim=64,
                                                      pooling=pooling, tuned_layers=tuned_layers)).eval()
    if tuned_layers:  # a trained top layer differs from the frozen one: the graph must hold the copy
        model.load_tuned_layers(shared_encoder())
        with torch.no_grad():
            for weight in model.tuned.parameters():
                weight.add_(0.05 * torch.randn_like(weight))
    cfg = resemblyzer_states_features()
    meta = {"model": {"arch": model.arch, "config": model.config.to_dict()}, "labels": LABELS,
            "features": cfg.to_dict()}
    bundle = Bundle(LABELS, cfg, model.arch, "test", meta, loaded=model)
    path = export_onnx(bundle, tmp_path / "rz.onnx")
    rng = np.random.default_rng(2)
    feats = [rng.uniform(0, 1, (n, 40)).astype(np.float32) for n in (15, 90, 260)]
    ref = TorchEngine(bundle, batch_size=3)(feats)
    np.testing.assert_allclose(OnnxEngine(load_bundle(path), path, batch_size=3)(feats), ref, atol=1e-4)
    # masked pooling after a causal LSTM: padding is exact here too
    np.testing.assert_allclose(TorchEngine(bundle, batch_size=1)(feats), ref, atol=1e-6)


# ---------------------------------------------------------------- the shipped format
def test_save_default_round_trips_a_trained_run(synthetic_corpus: Path, tmp_path: Path):
    from copypaste_ser.inference.pretrained import load_model_dir
    from copypaste_ser.inference.pretrained.save import save_default
    from copypaste_ser.training.config import make_config
    from copypaste_ser.training.loop import train

    run = tmp_path / "run"
    train(make_config("tiny", data=str(synthetic_corpus), epochs=1, threads=1), run, progress=False)
    out = save_default(run, tmp_path / "default")
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "model.json", "MODEL_CARD.md", "model.onnx"}
    assert "TODO" in (out / "MODEL_CARD.md").read_text()
    obj = load_model_dir(out)
    assert obj["labels"] and "state_dict" in obj
    wav = tmp_path / "a.wav"
    sf.write(wav, _speechish(5.5), RATE)
    a = EmotionPredictor(run)([wav], window=2.0)
    b = EmotionPredictor(out, engine="torch")([wav], window=2.0)
    assert [r["probs"] for r in a] == [r["probs"] for r in b]  # the same weights, bit for bit
    auto = EmotionPredictor(out)  # the folder ships model.onnx: onnxruntime by default
    assert auto.bundle.onnx_path == out / "model.onnx"
    for r, o in zip(a, auto([wav], window=2.0)):
        assert o["probs"] == pytest.approx(r["probs"], abs=1e-4)


def test_missing_default_model_is_one_line(tmp_path: Path, monkeypatch):
    from test_bad_input import run_cli

    import copypaste_ser.inference.pretrained as P

    monkeypatch.setattr(P, "DEFAULT_DIR", tmp_path / "nothing")
    sf.write(tmp_path / "a.wav", _speechish(1.0), RATE)
    code, output = run_cli(["predict", str(tmp_path / "a.wav")])
    assert code == 2 and output.strip().count("\n") == 0
    assert output.startswith("error: the default model is not installed"), output


# ---------------------------------------------------------------- CLI and outputs
def test_predict_writes_rows_csv_and_plot(tmp_path: Path, tiny_model_file: Path):
    from test_bad_input import run_cli

    wav = tmp_path / "talk.wav"
    sf.write(wav, np.concatenate([_speechish(5.0), np.zeros(3 * RATE, np.float32), _speechish(2.5, 1)]), RATE)
    code, output = run_cli(["predict", str(tiny_model_file), str(wav), "--window", "2", "--out",
                            str(tmp_path / "rows.jsonl"), "--plot", str(tmp_path / "t.png"), "--engine", "onnx"])
    assert code == 0, output
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    windows, files = rows[:-1], rows[-1:]
    assert files[0]["level"] == "file" and windows[-1]["end"] == pytest.approx(10.5)
    assert any(not r["speech"] for r in windows) and "no speech" in output
    assert (tmp_path / "t.png").stat().st_size > 1000
    code, output = run_cli(["predict", str(tiny_model_file), str(wav), "--out", str(tmp_path / "rows.csv"),
                            "--batch-size", "1"])
    assert code == 0 and output.count("\n") == 1, output  # no --window: the file's answer only
    table = list(csv.DictReader(open(tmp_path / "rows.csv")))
    assert table[-1]["level"] == "file" and len(table[-1]["p_angry"]) > 8  # full precision
    onnx_file = [r for r in rows if r["level"] == "file"][0]["probs"]["angry"]
    assert float(table[-1]["p_angry"]) == pytest.approx(onnx_file, abs=0.05)  # other windows, same model


def test_a_folder_stands_for_its_audio_files(tmp_path: Path, tiny_model_file: Path):
    from test_bad_input import run_cli

    folder = tmp_path / "calls"
    (folder / "day2").mkdir(parents=True)
    for k, name in enumerate(("b.wav", "a.WAV", "day2/c.flac")):
        sf.write(folder / name, _speechish(2.0 + k, k), RATE)
    (folder / "notes.txt").write_text("not audio")
    (folder / "._a.wav").write_bytes(b"AppleDouble debris")
    code, by_folder = run_cli(["predict", str(tiny_model_file), str(folder)])
    assert code == 0, by_folder
    files = [folder / "a.WAV", folder / "b.wav", folder / "day2" / "c.flac"]
    code, by_name = run_cli(["predict", str(tiny_model_file), *map(str, files)])
    assert code == 0 and by_folder == by_name
    *answers, count = by_folder.splitlines()
    assert [line.split(":")[0] for line in answers] == [str(f) for f in files]
    emotions = [line.split(": ")[1].split()[0] for line in answers]
    assert count == "3 files: " + ", ".join(f"{e} {emotions.count(e)} ({100 * emotions.count(e) / 3:.0f} %)"
                                            for e in sorted(set(emotions), key=lambda e: (-emotions.count(e),
                                                                                          emotions.index(e))))


def test_predict_knows_a_run_folder_by_the_files_training_writes():
    from copypaste_ser.cli.predict import RUN_FILES
    from copypaste_ser.training.rundir import MARKER

    assert MARKER in RUN_FILES  # predict names the marker rather than importing training/ (torch)


def test_timeline_names_keep_files_of_one_stem_apart(tmp_path: Path):
    from copypaste_ser.inference.timeline import plot_paths

    plots = tmp_path / "plots"
    assert plot_paths(tmp_path / "t.png", ["x/a.wav"]) == [tmp_path / "t.png"]
    assert plot_paths(plots, ["x/a.wav", "x/b.flac"]) == [plots / "a.png", plots / "b.png"]
    files = [tmp_path / "calls" / "b.wav", tmp_path / "calls" / "day2" / "b.wav", tmp_path / "calls" / "c.wav"]
    assert plot_paths(plots, files) == [plots / "b.png", plots / "day2__b.png", plots / "c.png"]


@pytest.mark.parametrize("args, expected", [
    (["--hop", "5", "--window", "2"], "--hop: must be at most the window"),
    (["--engine", "tf"], "--engine: must be one of auto, torch, onnx"),
    (["--batch-size", "0"], "--batch-size: must be an integer >= 1"),
    (["--device", "cuda:7"], "--device"),
    (["--out", "x.txt"], "--out: x.txt: the file name must end in .jsonl or .csv"),
])
def test_bad_predict_options_are_one_line(args: list[str], expected: str, tiny_model_file: Path, tmp_path: Path):
    from test_bad_input import run_cli

    code, output = run_cli(["predict", str(tiny_model_file), str(tmp_path / "a.wav"), *args])
    assert code == 2 and output.startswith("error: ") and expected in output and output.count("\n") <= 1, output


def test_version_and_python_m():
    from copypaste_ser import __version__

    proc = subprocess.run([sys.executable, "-m", "copypaste_ser", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"copypaste-ser {__version__}"


def test_export_cli(tmp_path: Path, tiny_model_file: Path):
    from test_bad_input import run_cli

    code, output = run_cli(["export", str(tiny_model_file), "--onnx", str(tmp_path / "m.onnx")])
    assert code == 0 and (tmp_path / "m.onnx").is_file(), output
    code, output = run_cli(["export", str(tiny_model_file), "--onnx", str(tmp_path / "m.bin")])
    assert code == 2 and "must end in .onnx" in output


def _silero_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("silero_vad") is not None


@pytest.mark.skipif(not _silero_installed(), reason="silero-vad is not installed (pip install silero-vad)")
def test_silero_vad_option(tmp_path: Path, tiny_model_file: Path):
    from copypaste_ser.inference.vad import SileroVAD

    vad = SileroVAD(FeatureConfig())
    assert not vad(np.zeros(RATE, np.float32), 100).any()
    assert vad(_speechish(1.0), 100).shape == (100,)
    sf.write(tmp_path / "a.wav", np.concatenate([np.zeros(RATE, np.float32), _speechish(2.0)]), RATE)
    rows = EmotionPredictor(tiny_model_file, vad="silero")([tmp_path / "a.wav"], window=1.0)
    assert len(rows) == 3 and not rows[0]["speech"]
    # a group of windows in one recurrent batch: the same probabilities as one window at a time
    rng = np.random.default_rng(3)
    waves = [_speechish(1.0, k) * (k % 3) for k in range(5)] + [rng.normal(0, 0.1, 7000).astype(np.float32)]
    batched = vad.batch_chunk_probs(waves)
    for wave, probs in zip(waves, batched):
        np.testing.assert_array_equal(probs, vad.chunk_probs(wave))
    assert {len(p) for p in batched} == {32, 14} and not batched[0].max() > 0.5 and batched[1].max() > 0.5


def test_traced_resnet_generalises_to_other_shapes():
    """No data-dependent check is left in forward: a trace at one shape serves any other."""
    import warnings

    model = build_model(ModelConfig.from_preset("tiny", 4)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)  # a Python branch on a tensor would warn
        traced = torch.jit.trace(model, (torch.randn(2, 50, 23), torch.tensor([50, 30])))
    x, lengths = torch.randn(3, 77, 23), torch.tensor([77, 10, 5])
    torch.testing.assert_close(traced(x, lengths), model(x, lengths))


def test_a_wave_in_memory_at_any_rate_gets_the_answer_its_file_gets(tmp_path):
    import soxr

    from copypaste_ser.errors import UserError

    wave = _speechish(6.0, seed=3)
    path = tmp_path / "a.wav"
    sf.write(path, wave, RATE, subtype="FLOAT")
    predictor = EmotionPredictor(None)
    _, from_file = predictor.predict_file(path)
    rows, from_array = predictor.predict_wave(wave, RATE, name="a")
    assert from_array["emotion"] == from_file["emotion"] and len(rows) == from_file["windows"]
    np.testing.assert_allclose([from_array["probs"][k] for k in predictor.labels],
                               [from_file["probs"][k] for k in predictor.labels], atol=1e-5)
    stereo_48k = np.repeat(soxr.resample(wave, RATE, 48000)[:, None], 2, axis=1)
    _, resampled = predictor.predict_wave(stereo_48k, 48000)
    assert resampled["emotion"] == from_file["emotion"]
    with pytest.raises(UserError, match="<array>: audio holds NaN"):
        predictor.predict_wave(np.full(16000, np.nan, np.float32), RATE)
