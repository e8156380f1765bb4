"""The model shipped in the package: `predict FILE` works with no run folder, its two engines
agree, its card and metadata say what it is, and on real speech it hears the emotion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_predict_stream import _speechish

from copypaste_ser.data.corpora import ravdess
from copypaste_ser.inference.predict import EmotionPredictor
from copypaste_ser.inference.pretrained import CARD, DEFAULT_DIR, META, WEIGHTS, load_model_dir

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LABELS = {"neutral", "angry", "happy", "sad"}


def test_the_package_ships_the_default_model_with_its_card():
    # model.onnx is not in git: `make install` exports it (engine auto uses it where present)
    assert {WEIGHTS, META, CARD} <= {p.name for p in DEFAULT_DIR.iterdir()}
    obj = load_model_dir(DEFAULT_DIR)
    assert set(obj["labels"]) == LABELS and obj["model"]["arch"] == "whisper-attention"
    assert 0.1 < json.loads((DEFAULT_DIR / META).read_text())["temperature"] < 1.0  # calibrated: under-confident raw
    card = (DEFAULT_DIR / CARD).read_text()
    assert "TODO" not in card
    for must in ("non-commercial", "EmoDB", "RAVDESS", "CREMA-D", "nEMO", "ASED", "TESS", "ESD", "Leave one corpus out",
                 "weighted F1", "Known limits", "MIT"):
        assert must in card, must


def test_predict_with_no_run_folder_answers_for_the_whole_file(tmp_path: Path):
    from test_bad_input import run_cli

    wav = tmp_path / "talk.wav"
    sf.write(wav, np.concatenate([_speechish(6.0, 0), np.zeros(16000 * 3, np.float32), _speechish(3.0, 1)]), 16000)
    code, output = run_cli(["predict", str(wav), "--window", "4", "--out", str(tmp_path / "rows.jsonl")])
    assert code == 0, output
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    windows, answer = rows[:-1], rows[-1]
    assert answer["level"] == "file" and set(answer["probs"]) == LABELS
    assert sum(answer["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    assert windows[0]["start"] == 0 and windows[-1]["end"] == pytest.approx(12.0)
    # the file's answer is the voiced-seconds-weighted mean of its speech windows
    speech = [w for w in windows if w["speech"]]
    weights = np.array([w["voiced_seconds"] for w in speech])
    for label in LABELS:
        mean = float(np.dot(weights, [w["probs"][label] for w in speech]) / weights.sum())
        assert answer["probs"][label] == pytest.approx(mean, abs=1e-6)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A copy of the default model with its ONNX export (`make install` exports into the package)."""
    from copypaste_ser.inference.export import export_onnx

    model = tmp_path_factory.mktemp("model") / "default"
    shutil.copytree(DEFAULT_DIR, model, ignore=shutil.ignore_patterns("model.onnx"))
    export_onnx(model, model / "model.onnx")
    return model


def test_onnx_and_torch_give_the_same_probabilities(tmp_path: Path, exported: Path):
    wav = tmp_path / "a.wav"
    sf.write(wav, _speechish(9.0, 2), 16000)
    torch_rows = EmotionPredictor(exported, engine="torch")([wav], window=4.0)
    onnx_rows = EmotionPredictor(exported, engine="onnx")([wav], window=4.0)
    assert len(torch_rows) == len(onnx_rows) > 1
    for t, o in zip(torch_rows, onnx_rows):
        if t["speech"]:
            for label in LABELS:
                assert o["probs"][label] == pytest.approx(t["probs"][label], abs=1e-4)


def _front_end_as_the_card_says(wave: np.ndarray) -> np.ndarray:
    """MODEL_CARD.md's steps 3-4 in plain numpy (only the mel filter bank is taken from the package)."""
    from copypaste_ser.features.whisper import slaney_mel_filters

    padded = np.pad(wave, 200, mode="reflect")
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)  # periodic
    frames = np.stack([padded[i: i + 400] * hann for i in range(0, len(padded) - 400 + 1, 160)])[:-1]
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = np.log10(np.maximum(power @ slaney_mel_filters(80).T, 1e-10))
    mel = (np.maximum(mel, mel.max() - 8.0) + 4.0) / 4.0
    if len(mel) % 2:
        mel = np.concatenate([mel, mel.min(axis=0, keepdims=True)])
    return mel.reshape(-1, 160).astype(np.float32)


def test_the_model_card_specifies_the_onnx_front_end(exported: Path):
    import onnxruntime as ort

    wave = _speechish(4.0, 3)
    rows = _front_end_as_the_card_says(wave)
    assert rows.shape == (200, 160)
    session = ort.InferenceSession(str(exported / "model.onnx"))
    (logits,) = session.run(None, {"feats": rows[None], "lengths": np.array([len(rows)], np.int64)})
    meta = json.loads((exported / META).read_text())
    z = logits[0] / meta["temperature"]
    probs = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    _, answer = EmotionPredictor(exported, engine="onnx").predict_wave(wave, 16000)
    assert answer["speech"]
    for k, label in enumerate(meta["labels"]):
        assert answer["probs"][label] == pytest.approx(float(probs[k]), abs=1e-4)


@pytest.mark.integration
@pytest.mark.skipif(not (SHARED / "ravdess").is_dir(), reason="needs ../shared/data")
def test_it_hears_the_emotion_of_an_actor_it_never_heard():
    # RAVDESS actor 18 is one of the default model's held-out test speakers (MODEL_CARD.md)
    manifest, _ = ravdess.prepare(SHARED / "ravdess", classes="paper4")
    actor = [u for u in manifest if u.speaker == ravdess.speaker_id(18)]
    files, truth = [u.audio for u in actor], [u.emotion for u in actor]
    rows = EmotionPredictor(DEFAULT_DIR)(files)
    said = [max(r["probs"], key=r["probs"].get) for r in rows if r["level"] == "file"]
    assert len(said) == len(files) == 28
    accuracy = np.mean([s == t for s, t in zip(said, truth)])
    assert accuracy >= 0.6, (accuracy, list(zip(said, truth)))  # chance is 0.29 (angry/happy/sad 8 each, neutral 4)


@pytest.mark.integration
@pytest.mark.skipif(not (SHARED / "librispeech-mini").is_dir(), reason="needs ../shared/data")
def test_clean_read_speech_is_mostly_neutral():
    """Issue 35: the 0.2 default called 48 % of LibriSpeech's read sentences sad and 9 % neutral.
    (On the harder test-other part this model still says sad most often: MODEL_CARD.md.)"""
    files = sorted((SHARED / "librispeech-mini" / "train-clean-100").rglob("*.flac"))[:40]
    said = [r["emotion"] for r in EmotionPredictor(DEFAULT_DIR)(files)]  # one answer per file
    assert len(said) == len(files) == 40
    assert max(LABELS, key=said.count) == "neutral" and said.count("neutral") >= 16, said


@pytest.mark.integration
@pytest.mark.skipif(not (SHARED / "noise").is_dir(), reason="needs ../shared/data")
def test_noise_and_music_are_mostly_no_speech():
    """Issue 35: the 0.2 default gave noise and music an emotion (a cow: sad 100 %)."""
    from copypaste_ser.inference.vad import silero_available

    if not silero_available():
        pytest.skip("silero-vad is not installed (predict --vad auto then uses the energy VAD)")
    clips = sorted((SHARED / "noise" / "noise").glob("*.flac"))[:20] + sorted((SHARED / "noise" / "music").glob("*"))[:20]
    answers = EmotionPredictor(DEFAULT_DIR, vad="auto")(clips)
    silent = sum(not a["speech"] and a["emotion"] is None for a in answers)
    assert len(answers) == len(clips) == 40 and silent > len(clips) / 2, silent
