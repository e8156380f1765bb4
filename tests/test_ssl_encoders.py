"""Frozen wav2vec 2.0 / HuBERT / WavLM encoders (features/ssl_encoders.py) against transformers
itself: tiny random-weight models of each family, saved to a temporary folder and loaded by
path; batching, exact CopyPaste re-encoding of joins, a train + predict run, one-line refusals.
Nothing is downloaded (HF_HUB_OFFLINE=1)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from copypaste_ser.errors import UserError
from copypaste_ser.features.mfcc import SSL_KIND, compute_features, ssl_states_features
from copypaste_ser.features.ssl_encoders import encode_rows, load_ssl, shared_ssl, wave_rows, weights_id

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=8)
#: family -> (config class, model class, extra config, do_normalize in preprocessor_config.json or None: no file)
FAMILIES = {
    "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model", dict(feat_extract_norm="group"), True),
    "hubert": ("HubertConfig", "HubertModel", dict(feat_extract_norm="layer", do_stable_layer_norm=True), False),
    "wavlm": ("WavLMConfig", "WavLMModel", {}, None),
}


def speechy(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced-like test wave: harmonics with a wandering pitch, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    phase = 2 * np.pi * np.cumsum(120 + 30 * np.sin(2 * np.pi * 0.7 * t + seed)) / 16000
    wave = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t))
    return (0.2 * wave + 0.01 * rng.standard_normal(len(t)) + 0.05).astype(np.float32)  # a DC offset


def save_tiny(family: str, folder: Path):
    config_cls, model_cls, extra, normalize = FAMILIES[family]
    torch.manual_seed(0)
    model = getattr(transformers, model_cls)(getattr(transformers, config_cls)(**TINY, **extra)).eval()
    model.save_pretrained(folder)
    if normalize is not None:
        transformers.Wav2Vec2FeatureExtractor(do_normalize=normalize).save_pretrained(folder)
    return model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: tiny models gain nothing from more, and lose much on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=list(FAMILIES))
def tiny(request, tmp_path_factory) -> tuple[str, Path, object]:
    """(family, folder, the transformers model) of a tiny random-weight encoder saved locally."""
    folder = tmp_path_factory.mktemp(f"tiny-{request.param}")
    return request.param, folder, save_tiny(request.param, folder)


def test_states_by_local_path_are_transformers_hidden_states(tiny):
    family, folder, model = tiny
    wave = speechy(0.7)
    cfg = ssl_states_features(str(folder), layer=0)
    assert (cfg.kind, cfg.frame_shift_ms, cfg.input_dim, cfg.encoder_width) == (SSL_KIND, 20.0, 320, 32)
    extractor = (transformers.Wav2Vec2FeatureExtractor.from_pretrained(folder) if FAMILIES[family][3] is not None
                 else transformers.Wav2Vec2FeatureExtractor())  # do_normalize as saved, or the default
    assert extractor.do_normalize == (FAMILIES[family][3] is not False)
    rows = wave_rows(wave, 320)
    x = extractor(rows.reshape(-1), sampling_rate=16000, return_tensors="pt").input_values
    with torch.no_grad():  # 40 + 40 samples of padding: one state per 320-sample row, centred on it
        theirs = model(torch.nn.functional.pad(x, (40, 40)), output_hidden_states=True).hidden_states
    assert len(theirs) == 3 and theirs[0].shape[1] == len(rows) == 35
    for layer in range(3):
        feats = compute_features(wave, ssl_states_features(str(folder), layer=layer))
        assert feats.shape == (35, 320 + 32)
        np.testing.assert_array_equal(feats[:, :320], rows)
        np.testing.assert_allclose(feats[:, 320:], theirs[layer][0].numpy(), atol=2e-5, rtol=1e-4)
    mixed = compute_features(wave, ssl_states_features(str(folder), layer=2, mix=True))  # layers 0-2 side by side
    assert mixed.shape == (35, 320 + 3 * 32)
    np.testing.assert_allclose(mixed[:, 320:], torch.cat(theirs, -1)[0].numpy(), atol=2e-5, rtol=1e-4)


def test_a_batch_gives_each_utterance_its_own_states(tiny):
    from copypaste_ser.models.encoder_head import EncoderAttentionEmotion, EncoderHeadConfig

    _, folder, _ = tiny
    encoder = load_ssl(folder)
    rows = [wave_rows(speechy(s, seed=i), 320) for i, s in enumerate((0.33, 0.5, 0.33, 0.2))]
    together = encode_rows(rows, 1, encoder=encoder, max_states=40)  # two batches of two of one length
    for r, states in zip(rows, together):
        np.testing.assert_allclose(states, encode_rows([r], 1, encoder=encoder)[0], atol=1e-5)
    # the head encodes raw rows itself (predict): padding after an item never changes its states
    head = EncoderAttentionEmotion(EncoderHeadConfig(num_classes=2, encoder="ssl", input_dim=352, ssl_model=str(folder),
                                                     ssl_layer=1, ssl_width=32))
    x = torch.zeros(len(rows), max(map(len, rows)), 320)
    for i, r in enumerate(rows):
        x[i, : len(r)] = torch.from_numpy(r)
    lengths = torch.tensor([len(r) for r in rows])
    with torch.no_grad():
        states = head.states(x, lengths)
    for i, alone in enumerate(together):
        np.testing.assert_allclose(states[i, : len(alone)].numpy(), alone, atol=1e-5)


def test_copypaste_joins_are_encoded_whole(tiny):
    from copypaste_ser.augment.copypaste import CopyPaste
    from copypaste_ser.augment.pipeline import reencoding

    _, folder, _ = tiny
    cfg = ssl_states_features(str(folder), layer=2)
    waves = [speechy(0.64, seed=i) for i in range(2)]  # 32 rows each, no partial row
    items = [compute_features(w, cfg) for w in waves]
    step = reencoding(CopyPaste("se-cp", p=1.0, piece_length=None, seed=0), cfg)
    out, _ = step(items, [1, 1])
    joined = [o for o in out if len(o) == 64]
    assert joined and step.reencoded == len(joined)
    for item in joined:
        first = int(not np.array_equal(item[:32, :320], items[0][:, :320]))  # which utterance comes first
        whole = compute_features(np.concatenate([waves[first], waves[1 - first]]), cfg)
        np.testing.assert_allclose(item, whole, atol=2e-5, rtol=1e-4)
        pieced = np.concatenate([items[first], items[1 - first]])
        assert np.abs(item[:, 320:] - pieced[:, 320:]).max() > 1e-2  # a transformer is not frame-local
    # the concat probe (evaluation) joins test utterances the same way
    from copypaste_ser.evaluation.evaluate import exact_concatenations
    (probe,) = exact_concatenations([np.concatenate(items)], cfg)
    np.testing.assert_allclose(probe, compute_features(np.concatenate(waves), cfg), atol=2e-5, rtol=1e-4)


def cli(*args):
    import subprocess
    import sys
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "copypaste_ser", *map(str, args)], capture_output=True, text=True,
                          timeout=900, env=env)


def test_train_and_predict_with_a_local_encoder(tiny, synthetic_corpus, tmp_path):
    """In process (as ``train --init ssl-attention --encoder-model FOLDER --encoder-layer 1`` and
    ``predict RUN FILE --engine torch``; the CLI's options are checked below, cheaply)."""
    from copypaste_ser.inference.export import export_onnx
    from copypaste_ser.inference.predict import EmotionPredictor
    from copypaste_ser.models.checkpoint import load_model_file
    from copypaste_ser.training.config import check_applicable, make_config
    from copypaste_ser.training.loop import train

    family, folder, _ = tiny
    run = tmp_path / "run"
    cfg = make_config("tiny", data=str(synthetic_corpus), init="ssl-attention", encoder_model=str(folder),
                      encoder_layer=1, epochs=1, copypaste="n-cp", threads=1)
    check_applicable(cfg)
    train(cfg, run, progress=False)
    saved = load_model_file(run / "model.pt", kind="emotion")
    assert saved["model"]["arch"] == "ssl-attention" and family in saved["provenance"]["init_corpus"]
    assert (saved["features"]["encoder_model"], saved["features"]["encoder_layer"]) == (str(folder), 1)
    # predict encodes raw waveform rows itself; on a whole utterance it agrees with the cached-state scores
    first = json.loads((run / "metrics.json").read_text())["predictions"][0]
    manifest = [json.loads(x) for x in (synthetic_corpus / "manifest.jsonl").read_text().splitlines()]
    audio = Path(next(u["audio"] for u in manifest if u["id"] == first["id"]))
    _, answer = EmotionPredictor(run, engine="torch", vad="energy", threads=1).predict_file(
        audio if audio.is_absolute() else synthetic_corpus / audio)
    np.testing.assert_allclose([answer["probs"][lab] for lab in saved["labels"]], first["probs"], atol=2e-3)
    # the ONNX export carries the encoder: onnxruntime gives the same answer, windows of every length
    export_onnx(run, tmp_path / "m.onnx")
    wave = speechy(9.3, seed=5)  # 4-s windows: two whole and one short
    sf.write(tmp_path / "long.wav", wave, 16000)
    answers = [EmotionPredictor(source, engine=engine, vad="energy", threads=1).predict_file(tmp_path / "long.wav")
               for source, engine in ((run, "torch"), (tmp_path / "m.onnx", "onnx"))]
    assert len(answers[0][0]) == len(answers[1][0]) >= 3
    for torch_window, onnx_window in zip(answers[0][0], answers[1][0]):
        np.testing.assert_allclose(list(onnx_window["probs"].values()), list(torch_window["probs"].values()),
                                   atol=1e-4)
    from test_packaging import BLOCKER, TRAIN_ONLY  # the exported model predicts without torch
    (tmp_path / "blocked.py").write_text(BLOCKER.format(blocked=TRAIN_ONLY))
    blocked = subprocess.run([sys.executable, str(tmp_path / "blocked.py"), "predict", str(tmp_path / "m.onnx"),
                              str(tmp_path / "long.wav"), "--vad", "energy", "--json"], capture_output=True, text=True,
                             timeout=300)
    assert blocked.returncode == 0, blocked.stderr[-2000:]
    whole = json.loads(blocked.stdout.splitlines()[-1])["probs"]
    np.testing.assert_allclose(list(whole.values()), list(answers[1][1]["probs"].values()), atol=1e-4)


def test_the_cli_options_reach_the_encoder_and_a_refusal_is_one_line(synthetic_corpus, tmp_path):
    save_tiny("wav2vec2", tmp_path / "tiny")
    proc = cli("train", "--data", synthetic_corpus, "--preset", "tiny", "--out", tmp_path / "r", "--quiet",
               "--init", "ssl-attention", "--encoder-model", tmp_path / "tiny", "--encoder-layer", "5")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "--encoder-layer 5: this encoder has layers 0-2" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_the_cache_key_follows_the_weights_not_the_name(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    save_tiny("wav2vec2", a)
    save_tiny("wav2vec2", b)
    assert weights_id(str(a)) == weights_id(str(b))  # same bytes, same key
    cfg_a = ssl_states_features(str(a), layer=1)
    torch.manual_seed(1)
    transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**TINY)).save_pretrained(b)
    assert weights_id(str(a)) != weights_id(str(b))
    assert cfg_a.key().startswith("ssl-") and cfg_a.key() != ssl_states_features(str(b), layer=1).key()


def test_bad_encoders_and_options_are_one_line(tmp_path, monkeypatch):
    from copypaste_ser.training.config import check_applicable, make_config

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # even where the hub was imported before
    (tmp_path / "empty").mkdir()
    (tmp_path / "whisper").mkdir()
    (tmp_path / "whisper" / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "config.json").write_text(json.dumps({"model_type": "wavlm"}))
    cases = [(tmp_path / "missing", "no model folder there; give a folder saved with save_pretrained"),
             (tmp_path / "empty", "no config.json there"),
             (tmp_path / "whisper", "not a supported audio encoder (model_type 'whisper'; supported: wav2vec2, "
                                    "hubert, wavlm); use --init whisper-attention"),
             (tmp_path / "bare", "has config.json but no model.safetensors or pytorch_model.bin"),
             ("nobody/no-such-model", "could not get it from the Hugging Face hub")]
    for source, message in cases:
        with pytest.raises(UserError) as e:
            load_ssl(str(source))
        assert message in str(e.value) and "--encoder-model" in str(e.value) and "\n" not in str(e.value)
    tiny = tmp_path / "tiny"
    save_tiny("hubert", tiny)
    with pytest.raises(UserError, match=r"^--encoder-layer 3: this encoder has layers 0-2 "):
        make_config("tiny", init="ssl-attention", encoder_model=str(tiny), encoder_layer=3)
    with pytest.raises(UserError, match=r"^--init ssl-attention: needs --encoder-model"):
        make_config("tiny", init="ssl-attention")
    with pytest.raises(UserError, match=r"^encoder_layer: applies to init 'whisper-attention' or 'ssl-attention'"):
        check_applicable(make_config("tiny", encoder_layer=1))
    cfg = make_config("tiny", init="ssl-attention", encoder_model=str(tiny), spec_augment=True)
    assert cfg.features["encoder_layer"] == 1  # the middle layer by default
    with pytest.raises(UserError, match="spec_augment works on MFCC inputs"):
        check_applicable(cfg)
    # speaker normalisation touches the states, never the waveform samples kept for exact CopyPaste
    normed = make_config("tiny", init="ssl-attention", encoder_model=str(tiny), speaker_norm="speaker")
    check_applicable(normed)
    from copypaste_ser.features.speaker_norm import normalised_columns
    assert normalised_columns(normed.feature_config) == normed.feature_config.input_dim == 320
    with pytest.raises(UserError, match=r"^speaker_norm: exact CopyPaste encodes each join anew"):
        check_applicable(make_config("tiny", init="ssl-attention", encoder_model=str(tiny), speaker_norm="speaker",
                                     copypaste="n-cp"))
    shared_ssl.cache_clear()
    monkeypatch.setitem(__import__("sys").modules, "transformers", None)  # not installed
    with pytest.raises(UserError, match=r"need transformers: pip install 'copypaste-ser\[hub\]'"):
        load_ssl(str(tiny))


def test_whisper_takes_the_general_encoder_options_too(tmp_path):
    from copypaste_ser.training.config import make_config

    whisper = dict(num_mel_bins=80, d_model=16, encoder_attention_heads=2, encoder_layers=2, encoder_ffn_dim=64,
                   decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=16, max_source_positions=60,
                   max_target_positions=8, vocab_size=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                   decoder_start_token_id=1)
    transformers.WhisperModel(transformers.WhisperConfig(**whisper)).save_pretrained(tmp_path / "w")
    folder = str(tmp_path / "w")
    new = make_config("tiny", init="whisper-attention", encoder_model=folder, encoder_layer=1)
    old = make_config("tiny", init="whisper-attention", whisper_model=folder, whisper_layer=1)
    assert new.features == old.features and new.features["encoder_layer"] == 1
    with pytest.raises(UserError, match=r"^--encoder-layer and --whisper-layer: give one of them"):
        make_config("tiny", init="whisper-attention", encoder_model=folder, encoder_layer=1, whisper_layer=2)
    with pytest.raises(UserError, match=r"^--encoder-layer 4: this Whisper encoder has blocks 0-2"):
        make_config("tiny", init="whisper-attention", encoder_model=folder, encoder_layer=4)
