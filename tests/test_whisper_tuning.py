"""Fine-tuning Whisper's top blocks with the emotion head (``--encoder-tune-layers`` for
whisper-attention): the tuned blocks start as the pretrained ones, read the cached states of the
block below them, mask padding as the frozen encoder does, and are what predict and export run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from copypaste_ser.errors import UserError
from copypaste_ser.features.whisper_states import encode_rows, mel_rows
from copypaste_ser.features.whisper_weights import load_whisper
from copypaste_ser.models.encoder_head import EncoderAttentionEmotion, EncoderHeadConfig

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from conftest import save_tiny_whisper
    return save_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper-tune"), seed=0)


@pytest.fixture(scope="module")
def tiny_30s(tmp_path_factory):
    """With Whisper's 1500 positions (30 s): an ONNX trace holds one encoder window."""
    from conftest import save_tiny_whisper
    return save_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper-tune-30s"), seed=2, max_source_positions=1500)


def speech(seconds: float, seed: int) -> np.ndarray:
    from test_whisper import speechy
    return speechy(seconds, seed)


def head(model: Path, layer: int, tuned: int) -> EncoderAttentionEmotion:
    enc = load_whisper(str(model))
    cfg = EncoderHeadConfig(num_classes=4, encoder="whisper", input_dim=160 + enc.dims.width, whisper_model=str(model),
                            whisper_layer=layer, whisper_width=enc.dims.width, tuned_layers=tuned,
                            whisper_heads=enc.dims.heads, whisper_blocks=enc.dims.blocks)
    torch.manual_seed(1)
    m = EncoderAttentionEmotion(cfg).eval()
    if tuned:
        m.load_tuned_layers(enc)
    return m


def items(model: Path, layer: int, seconds=(0.5, 0.8, 0.3)) -> list[np.ndarray]:
    enc = load_whisper(str(model))
    rows = [mel_rows(speech(s, seed=i)) for i, s in enumerate(seconds)]
    return [np.concatenate([r, s], axis=1) for r, s in zip(rows, encode_rows(rows, layer, encoder=enc))]


def logits(model: EncoderAttentionEmotion, batch: list[np.ndarray]) -> np.ndarray:
    n = max(len(b) for b in batch)
    x = torch.zeros(len(batch), n, batch[0].shape[1])
    for i, b in enumerate(batch):
        x[i, : len(b)] = torch.from_numpy(b)
    with torch.no_grad():
        return model(x, torch.tensor([len(b) for b in batch])).numpy()


def test_tuned_blocks_start_as_the_frozen_block_they_replace(tiny):
    frozen, tuned = head(tiny, 2, 0), head(tiny, 2, 1)
    tuned.load_state_dict({**tuned.state_dict(), **frozen.state_dict()}, strict=True)  # same head weights
    below, at = items(tiny, 1), items(tiny, 2)
    frozen.fit_input_stats(at)
    tuned.fit_input_stats(below)  # the stats of the pretrained block 2, computed through the tuned copy
    np.testing.assert_allclose(tuned.in_mean.numpy(), frozen.in_mean.numpy(), atol=1e-4)
    np.testing.assert_allclose(logits(tuned, below), logits(frozen, at), atol=1e-4)


def test_tuned_blocks_mask_padding_and_read_raw_log_mel_alike(tiny):
    model = head(tiny, 2, 1)
    with torch.no_grad():  # moved from the pretrained weights, as after training
        for p in model.tuned_whisper.parameters():
            p.add_(0.05 * torch.randn_like(p))
    batch = items(tiny, 1)
    together = logits(model, batch)
    alone = np.concatenate([logits(model, [b]) for b in batch])
    np.testing.assert_allclose(together, alone, atol=1e-4)
    raw = logits(model, [b[:, :160] for b in batch])  # predict's input: the model encodes block 1 itself
    np.testing.assert_allclose(raw, together, atol=1e-4)


def test_only_the_tuned_blocks_and_the_head_learn_the_blocks_at_the_encoder_rate(tiny):
    from copypaste_ser.training.config import make_config
    from copypaste_ser.training.model_setup import make_optimizer

    model = head(tiny, 2, 1).train()
    cfg = make_config("tiny", init="whisper-attention", encoder_model=str(tiny), encoder_layer=2,
                      encoder_tune_layers=1, encoder_lr_scale=0.1, lr=0.01)
    assert cfg.feature_config.encoder_layer == 1  # the cache holds the block below the tuned one
    groups = make_optimizer(model, cfg).param_groups
    tuned_ids = {id(p) for p in model.tuned_whisper.parameters()}
    rates = {g["lr"] for g in groups for p in g["params"] if id(p) in tuned_ids}
    assert len(rates) == 1 and rates.pop() == pytest.approx(0.001)
    batch = items(tiny, 1)
    x = torch.stack([torch.from_numpy(b[:15]) for b in batch])
    model(x, torch.tensor([15] * len(batch))).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.tuned_whisper.parameters())


@pytest.mark.parametrize("args, message", [
    (["--encoder-tune-layers", "3"], "--encoder-tune-layers 3: tunes blocks up to the head's block 2, so at most 2"),
    (["--encoder-tune-layers", "1", "--encoder-mix"], "the block mix reads frozen blocks"),
    (["--encoder-tune-layers", "1", "--speaker-norm", "speaker"], "speaker_norm: tuned encoder blocks"),
])
def test_tuning_options_that_cannot_hold_are_one_line(tiny, synthetic_corpus, tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "copypaste_ser", "train", "--data", str(synthetic_corpus),
                           "--init", "whisper-attention", "--encoder-model", str(tiny), "--encoder-layer", "2",
                           "--preset", "tiny", "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet", *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "r").exists()


def test_resemblyzer_has_three_layers_to_tune():
    from copypaste_ser.training.config import check_applicable, make_config

    with pytest.raises(UserError, match="Resemblyzer has 3 LSTM layers"):
        check_applicable(make_config("tiny", init="resemblyzer-attention", encoder_tune_layers=4))


def test_train_predict_and_export_with_a_tuned_block(tiny_30s, synthetic_corpus, tmp_path):
    from copypaste_ser.models.checkpoint import load_model_file

    tiny = tiny_30s
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "copypaste_ser", "train", "--data", str(synthetic_corpus),
                           "--init", "whisper-attention", "--encoder-model", str(tiny), "--encoder-layer", "2",
                           "--encoder-tune-layers", "1", "--encoder-lr-scale", "0.1", "--preset", "tiny",
                           "--epochs", "2", "--copypaste", "n-cp", "--out", str(run), "--quiet"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    saved = load_model_file(run / "model.pt", kind="emotion")
    assert saved["model"]["config"]["tuned_layers"] == 1 and saved["model"]["config"]["whisper_layer"] == 2
    assert saved["features"]["encoder_layer"] == 1
    pretrained = load_whisper(str(tiny)).blocks[1].state_dict()
    tuned = {k.removeprefix("tuned_whisper.blocks.0."): v for k, v in saved["state_dict"].items()
             if k.startswith("tuned_whisper.blocks.0.")}
    assert max((tuned[k] - pretrained[k]).abs().max().item() for k in pretrained) > 0  # it learned
    first = json.loads((run / "metrics.json").read_text())["predictions"][0]
    manifest = [json.loads(x) for x in (synthetic_corpus / "manifest.jsonl").read_text().splitlines()]
    audio = next(u["audio"] for u in manifest if u["id"] == first["id"])
    audio = audio if Path(audio).is_absolute() else synthetic_corpus / audio
    out = tmp_path / "pred.jsonl"
    proc = subprocess.run([sys.executable, "-m", "copypaste_ser", "predict", str(run), str(audio), "--out", str(out),
                           "--engine", "torch"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    answer = next(json.loads(x) for x in out.read_text().splitlines() if json.loads(x)["level"] == "file")
    np.testing.assert_allclose([answer["probs"][lab] for lab in saved["labels"]], first["probs"], atol=2e-3)
    # the ONNX graph carries the frozen blocks and the tuned one: the same answer
    assert subprocess.run([sys.executable, "-m", "copypaste_ser", "export", str(run), "--onnx", str(tmp_path / "m.onnx")],
                          capture_output=True, text=True, timeout=600).returncode == 0
    proc = subprocess.run([sys.executable, "-m", "copypaste_ser", "predict", str(tmp_path / "m.onnx"), str(audio),
                           "--out", str(tmp_path / "onnx.jsonl")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    via_onnx = next(json.loads(x) for x in (tmp_path / "onnx.jsonl").read_text().splitlines()
                    if json.loads(x)["level"] == "file")
    np.testing.assert_allclose([via_onnx["probs"][lab] for lab in saved["labels"]], first["probs"], atol=2e-3)
