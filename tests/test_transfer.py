"""Transfer learning: a speaker model file -> emotion model (weights kept, output swapped),
refusals, fine-tuning through train.train, mean_norm plumbing, the Resemblyzer backbone and
its mel40 power front end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import weighted_f1_from_confusion

from copypaste_ser.errors import UserError
from copypaste_ser.features.batches import pad_batch
from copypaste_ser.features.mfcc import FeatureConfig, compute_features, mel_power, resemblyzer_features
from copypaste_ser.models import ModelConfig, build_model
from copypaste_ser.models.checkpoint import FORMAT
from copypaste_ser.training.config import make_config
from copypaste_ser.training.loop import train
from copypaste_ser.training.transfer import emotion_model_from_speaker

HAVE_RESEMBLYZER = __import__("importlib.util").util.find_spec("resemblyzer") is not None
needs_resemblyzer = pytest.mark.skipif(not HAVE_RESEMBLYZER,
                                       reason="pip install --no-deps resemblyzer==0.1.4")


def speaker_file(path, kind="speaker", features=None, arch="thin-resnet34", speakers=7):
    """A tiny-preset speaker model whose every tensor (BN statistics too) is non-default."""
    torch.manual_seed(3)
    model = build_model(ModelConfig.from_preset("tiny", num_classes=speakers))
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.rand_like(t))
    obj = {"format": FORMAT, "kind": kind, "model": {"arch": arch, "config": model.config.to_dict()},
           "labels": [f"spk{i}" for i in range(speakers)], "corpus": "fake-speakers", "neutral": None,
           "features": (features or FeatureConfig()).to_dict(), "train": {"data": "/x/fake"},
           "provenance": {"init": "random"},
           "state_dict": {k: v.clone() for k, v in model.state_dict().items()}}
    torch.save(obj, path)
    return obj


def test_speaker_weights_are_kept_and_only_the_output_is_replaced(tmp_path):
    saved = speaker_file(tmp_path / "spk.pt")["state_dict"]
    model, prov = emotion_model_from_speaker(tmp_path / "spk.pt", 4, FeatureConfig())
    state = model.state_dict()
    assert set(state) == set(saved)
    body = [k for k in saved if not k.startswith("output.")]
    assert len(body) > 20
    for k in body:
        assert torch.equal(state[k], saved[k]), k
    assert state["output.weight"].shape == (4, 64) and saved["output.weight"].shape == (7, 64)
    assert model.config.num_classes == 4 and model(torch.randn(2, 50, 23), torch.tensor([50, 30])).shape == (2, 4)
    assert prov["init_kind"] == "speaker" and prov["init_corpus"] == "fake-speakers"
    assert prov["init_arch"] == "thin-resnet34" and prov["init"] == str(tmp_path / "spk.pt")
    import hashlib
    assert prov["init_sha1"] == hashlib.sha1((tmp_path / "spk.pt").read_bytes()).hexdigest()[:12]


@pytest.mark.parametrize("case, match", [
    ("emotion", "holds a model of kind 'emotion'; this needs one of kind 'speaker'"),
    ("foreign", "not a copypaste-ser model file"),
    ("text", "not a readable checkpoint"),
    ("missing", "model file is missing"),
    ("arch", "unknown architecture 'ecapa'"),
    ("features", r"other features than this run's \(num_ceps: 20 there, 23 here\)"),
    ("shapes", "weights do not fit"),
])
def test_bad_init_files_are_refused(tmp_path, case, match):
    path = tmp_path / "init.pt"
    if case == "emotion":
        speaker_file(path, kind="emotion")
    elif case == "foreign":
        torch.save({"state_dict": {}}, path)
    elif case == "text":
        path.write_text("hello")
    elif case == "arch":
        speaker_file(path, arch="ecapa")
    elif case == "features":
        speaker_file(path, features=FeatureConfig(num_ceps=20))
    elif case == "shapes":
        obj = speaker_file(path)
        obj["state_dict"]["output.weight"] = torch.zeros(3, 3)
        torch.save(obj, path)
    with pytest.raises(UserError, match=match) as e:
        emotion_model_from_speaker(path, 4, FeatureConfig())
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_fine_tuning_keeps_a_frozen_encoder_and_records_provenance(synthetic_corpus, tmp_path):
    saved = speaker_file(tmp_path / "spk.pt")["state_dict"]
    cfg = make_config("tiny", data=str(synthetic_corpus), init=str(tmp_path / "spk.pt"), epochs=1,
                      freeze_encoder=True, threads=1)
    train(cfg, tmp_path / "run", progress=False)
    obj = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    params = {n for n, _ in build_model(ModelConfig.from_preset("tiny", num_classes=4)).named_parameters()}
    for k in params - {"output.weight", "output.bias"}:
        assert torch.equal(obj["state_dict"][k], saved[k]), k
    assert not torch.equal(obj["state_dict"]["output.weight"][:, :4], torch.zeros(4, 4))
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["provenance"] == obj["provenance"] and obj["provenance"]["init_kind"] == "speaker"


def test_mean_norm_can_be_switched_off():
    x = np.arange(12, dtype=np.float32).reshape(4, 3) + 5
    normed, _, _ = pad_batch([x], [0])
    raw, _, _ = pad_batch([x], [0], mean_norm=False)
    assert torch.allclose(normed[0].mean(0), torch.zeros(3)) and torch.equal(raw[0], torch.from_numpy(x))
    assert FeatureConfig().mean_norm and not resemblyzer_features().mean_norm
    # caches made before kind/mean_norm existed keep their key; mel40 gets its own
    assert FeatureConfig().key() == FeatureConfig(mean_norm=False).key() == "mfcc-2491b75d93"
    assert resemblyzer_features().key().startswith("mel40-")
    with pytest.raises(UserError, match="unknown feature kind 'plp'"):
        FeatureConfig(kind="plp")


# ---------------------------------------------------------------- mel40 front end
def _librosa_mel(y: np.ndarray, sr=16000, n_fft=400, hop=160, n_mels=40) -> np.ndarray:
    """librosa.feature.melspectrogram(y, sr, n_fft=400, hop_length=160, n_mels=40) in numpy
    (Slaney mel scale and norm, periodic Hann, power 2), frames centred at t*hop."""
    def hz_to_mel(f):
        f = np.asarray(f, float)
        return np.where(f >= 1000, 15 + np.log(np.maximum(f, 1e-10) / 1000) / (np.log(6.4) / 27), f / (200 / 3))

    def mel_to_hz(m):
        return np.where(m >= 15, 1000 * np.exp(np.log(6.4) / 27 * (m - 15)), m * 200 / 3)

    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    edges = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(sr / 2), n_mels + 2))
    ramps = edges[:, None] - freqs[None, :]
    fb = np.stack([np.maximum(0, np.minimum(-ramps[i] / (edges[i + 1] - edges[i]),
                                            ramps[i + 2] / (edges[i + 2] - edges[i + 1])))
                   for i in range(n_mels)])
    fb *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    yp = np.pad(y, n_fft // 2)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([yp[i * hop: i * hop + n_fft] * win for i in range(1 + (len(yp) - n_fft) // hop)])
    return (np.abs(np.fft.rfft(frames, axis=1)) ** 2) @ fb.T


def test_mel40_front_end_matches_librosa_and_keeps_voiced_frames():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    wave[:4000] *= 0.001  # a quiet start for the VAD to drop
    cfg = resemblyzer_features()
    ours = mel_power(wave, cfg)
    assert ours.shape[1] == 40 and np.isfinite(ours).all() and (ours >= 0).all()
    ref = _librosa_mel(wave[80:])  # Kaldi centres frame t at t*10 ms + 5 ms
    n = min(len(ref), len(ours)) - 3
    np.testing.assert_allclose(ours[2:n], ref[2:n], rtol=1e-3, atol=1e-6 * ref.max())
    feats = compute_features(wave, cfg)
    assert feats.shape[1] == 40 and np.isfinite(feats).all() and 30 < len(feats) < len(ours)
    # quieter than -30 dBFS: raised to it, like resemblyzer.preprocess_wav (louder: left as is)
    gain = (10 ** (-30 / 20) / np.sqrt(np.mean(wave.astype(np.float64) ** 2))) ** 2
    for scale in (0.01, 0.001):
        np.testing.assert_allclose(mel_power(wave * scale, cfg), ours * gain, rtol=1e-3, atol=1e-6 * ours.max() * gain)


# ---------------------------------------------------------------- Resemblyzer
@needs_resemblyzer
def test_resemblyzer_weights_load_with_no_missing_or_unexpected_keys():
    from copypaste_ser.models.resemblyzer import ResemblyzerEmotion, pretrained_state, weights_path

    raw = torch.load(weights_path(), map_location="cpu", weights_only=True)["model_state"]
    state = pretrained_state()
    model = ResemblyzerEmotion(5, pretrained=False)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["output.weight", "output.bias"] and unexpected == []
    model = ResemblyzerEmotion(5)
    mine = model.state_dict()
    assert torch.equal(mine["lstm.weight_hh_l2"], raw["lstm.weight_hh_l2"])
    assert torch.equal(mine["embedding.0.weight"], raw["linear.weight"])
    x, lengths = torch.rand(2, 30, 40), torch.tensor([30, 12])
    out = model(x, lengths)
    assert out.shape == (2, 5)
    assert torch.allclose(out[1], model(x[1:, :12])[0], atol=1e-5)  # padded frames are ignored


def test_init_resemblyzer_without_the_wheel_names_the_pip_command(monkeypatch):
    import importlib.util

    from copypaste_ser.training.transfer import emotion_model_from_speaker as load

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(UserError, match=r"pip install --no-deps resemblyzer==0\.1\.4"):
        load("resemblyzer", 4, resemblyzer_features())


@needs_resemblyzer
def test_train_init_resemblyzer_end_to_end(synthetic_corpus, tmp_path):
    from copypaste_ser.inference.predict import EmotionPredictor

    cfg = make_config("tiny", data=str(synthetic_corpus), init="resemblyzer", epochs=1, threads=1)
    assert cfg.feature_config == resemblyzer_features()
    metrics = train(cfg, tmp_path / "rz", progress=False)
    assert metrics["weighted_f1"] == pytest.approx(weighted_f1_from_confusion(metrics["confusion"]))
    obj = torch.load(tmp_path / "rz" / "model.pt", weights_only=True)
    assert obj["model"]["arch"] == "resemblyzer-lstm" and obj["features"]["kind"] == "mel40-power"
    assert obj["provenance"]["init"] == "resemblyzer" and "set automatically" in obj["provenance"]["features"]
    from copypaste_ser.data.manifest import load_corpus
    manifest, protocol = load_corpus(synthetic_corpus)
    result = EmotionPredictor(tmp_path / "rz")([manifest[protocol.fold().test[0]].audio])[0]
    assert result["emotion"] in manifest.labels
    with pytest.raises(UserError, match=r"kind: 'mel40-power' there, 'mfcc' here"):
        emotion_model_from_speaker("resemblyzer", 4, FeatureConfig())


@needs_resemblyzer
def test_train_cli_tunes_the_top_layer_with_mean_std_pooling(synthetic_corpus, tmp_path):
    from typer.testing import CliRunner

    from copypaste_ser.cli.main import app
    from copypaste_ser.features.encoders import pretrained_state
    from copypaste_ser.inference.predict import EmotionPredictor

    out = tmp_path / "tuned"
    result = CliRunner().invoke(app, ["train", "--data", str(synthetic_corpus), "--out", str(out), "--preset", "tiny",
                                      "--init", "resemblyzer-attention", "--encoder-tune-layers", "1",
                                      "--encoder-lr-scale", "0.5", "--head-pooling", "meanstd", "--epochs", "1",
                                      "--copypaste", "n-cp", "--threads", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    obj = torch.load(out / "model.pt", weights_only=True)
    assert obj["model"]["config"]["tuned_layers"] == 1 and obj["model"]["config"]["pooling"] == "meanstd"
    pretrained = pretrained_state()
    tuned = obj["state_dict"]["tuned.0.weight_hh_l0"]
    assert tuned.shape == pretrained["lstm.weight_hh_l2"].shape
    assert not torch.equal(tuned, pretrained["lstm.weight_hh_l2"])  # it was trained
    from copypaste_ser.data.manifest import load_corpus
    manifest, protocol = load_corpus(synthetic_corpus)
    assert EmotionPredictor(out)([manifest[protocol.fold().test[0]].audio])[0]["emotion"] in manifest.labels
