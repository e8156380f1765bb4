"""The scratch ResNet's small-corpus options: cosine learning rate, dropout, the ``small`` preset."""

import math

import pytest
import torch

from copypaste_ser.errors import UserError
from copypaste_ser.training.config import make_config
from copypaste_ser.training.loop import train
from copypaste_ser.training.model_setup import (
    build_emotion_model,
    epoch_lr_factor,
    make_optimizer,
    set_epoch_lr,
)


def test_cosine_factor_halves_midway_and_falls_every_epoch():
    factors = [epoch_lr_factor("cosine", e, 10) for e in range(1, 11)]
    assert factors[0] == 1.0
    assert factors[5] == pytest.approx(0.5)  # epoch 6 of 10: half way through
    assert all(a > b > 0 for a, b in zip(factors, factors[1:]))
    assert [epoch_lr_factor("constant", e, 10) for e in (1, 10)] == [1.0, 1.0]
    with pytest.raises(ValueError):
        epoch_lr_factor("step", 1, 10)


def test_epoch_rate_survives_a_checkpoint_round_trip():
    cfg = make_config("tiny", lr=0.01, lr_schedule="cosine", epochs=4, encoder_lr_scale=0.5)
    model, _ = build_emotion_model(cfg, 4)
    optimizer = make_optimizer(model, cfg)
    set_epoch_lr(optimizer, cfg, 3)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.0025, 0.005])
    resumed = make_optimizer(model, cfg)
    resumed.load_state_dict(optimizer.state_dict())  # what a resumed run does
    set_epoch_lr(resumed, cfg, 4)
    factor = 0.5 * (1 + math.cos(math.pi * 3 / 4))
    assert [g["lr"] for g in resumed.param_groups] == pytest.approx([0.005 * factor, 0.01 * factor])


def test_training_run_uses_the_schedule(synthetic_corpus, tmp_path):
    cfg = make_config("tiny", data=str(synthetic_corpus), threads=1, epochs=3, lr=0.002, lr_schedule="cosine")
    train(cfg, tmp_path / "run", progress=False)
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    last_epoch_rate = 0.002 * epoch_lr_factor("cosine", 3, 3)
    assert [g["lr"] for g in ckpt["optimizer"]["param_groups"]] == pytest.approx([last_epoch_rate] * 2)


def test_dropout_reaches_the_scratch_model_and_is_refused_with_init():
    model, _ = build_emotion_model(make_config("tiny", dropout=0.3), 4)
    assert model.dropout.p == 0.3 and model.config.dropout == 0.3
    assert build_emotion_model(make_config("tiny"), 4)[0].dropout.p == 0.0
    with pytest.raises(UserError, match="dropout"):
        build_emotion_model(make_config("tiny", dropout=0.3, init="resemblyzer-attention"), 4)


@pytest.mark.parametrize("option,value", [("dropout", 1.5), ("lr_schedule", "step")])
def test_bad_values_name_the_option(option, value):
    with pytest.raises(UserError, match=option.replace("_", "-")):
        make_config("tiny", **{option: value})


def _resnet_pair():
    from copypaste_ser.models import ModelConfig, build_model
    torch.manual_seed(0)
    plain = build_model(ModelConfig.from_preset("tiny", 4)).eval()
    normed = build_model(ModelConfig.from_preset("tiny", 4, input_norm=True)).eval()
    normed.load_state_dict({**plain.state_dict(), "in_mean": normed.in_mean, "in_std": normed.in_std})
    return plain, normed


def test_input_norm_standardises_each_coefficient_and_keeps_padding_zero():
    plain, normed = _resnet_pair()
    gen = torch.Generator().manual_seed(1)
    train_items = [3 + 2 * torch.randn(40, 23, generator=gen).numpy(), 5 + torch.randn(25, 23, generator=gen).numpy()]
    normed.fit_input_stats(train_items)
    frames = torch.cat([torch.as_tensor(x) for x in train_items])
    torch.testing.assert_close(normed.in_mean, frames.mean(0))
    torch.testing.assert_close(normed.in_std, frames.std(0))
    long, short = torch.randn(1, 30, 23, generator=gen) + 4, torch.randn(1, 18, 23, generator=gen) + 4
    batch = torch.cat([long, torch.cat([short, torch.zeros(1, 12, 23)], dim=1)])
    lengths = torch.tensor([30, 18])
    by_hand = (batch - normed.in_mean) / normed.in_std
    by_hand[1, 18:] = 0.0
    with torch.no_grad():
        torch.testing.assert_close(normed(batch, lengths), plain(by_hand, lengths))
        assert not torch.allclose(normed(batch, lengths), plain(batch, lengths), atol=1e-3)


def test_training_fits_the_statistics_of_what_the_model_receives(synthetic_corpus, tmp_path):
    def in_mean(**kw):
        cfg = make_config("tiny", data=str(synthetic_corpus), threads=1, epochs=1, input_norm=True, **kw)
        out = tmp_path / f"run-{len(kw)}"
        train(cfg, out, progress=False)
        state = torch.load(out / "model.pt", weights_only=True)["state_dict"]
        assert state["in_std"].min() < 0.99 or state["in_std"].max() > 1.01  # fitted, not the initial ones
        return state["in_mean"]

    assert in_mean().abs().max() < 1e-3  # per-item mean normalisation first: the means are gone
    assert in_mean(features={"mean_norm": False}).abs().max() > 0.1


def test_spec_augment_without_copypaste_trains(synthetic_corpus, tmp_path):
    # SpecAugment alone is the augmentation: the trainer must not expect a CopyPaste plan
    cfg = make_config("tiny", data=str(synthetic_corpus), threads=1, epochs=1, spec_augment=True)
    train(cfg, tmp_path / "run", progress=False)
    history = (tmp_path / "run" / "history.jsonl").read_text().splitlines()
    assert len(history) == 1 and '"copypaste_batches": 0.0' in history[0]


def test_small_preset_is_the_dev_chosen_recipe_and_trains(synthetic_corpus, tmp_path):
    cfg = make_config("small", data=str(synthetic_corpus), threads=1, epochs=2)
    assert (cfg.spec_augment, cfg.input_norm, cfg.feature_config.mean_norm, cfg.lr_schedule, cfg.select) == \
        (True, True, False, "cosine", "average")
    train(cfg, tmp_path / "run", progress=False)
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert saved["model"]["config"]["blocks"] == [1, 1, 1, 1] and saved["model"]["config"]["input_norm"]
    assert saved["state_dict"]["in_mean"].abs().max() > 0.1  # raw MFCC means, fitted on the training set


def test_small_model_exports_to_onnx_with_its_input_statistics(tmp_path):
    import dataclasses

    import numpy as np
    from test_predict_stream import save_resnet_file

    from copypaste_ser.features.mfcc import FeatureConfig
    from copypaste_ser.inference.engines import OnnxEngine, TorchEngine, load_bundle
    from copypaste_ser.inference.export import export_onnx
    from copypaste_ser.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig.from_preset("small", 4, input_norm=True)).eval()
    model.in_mean.uniform_(-5, 5)
    model.in_std.uniform_(0.5, 3)
    features = dataclasses.replace(FeatureConfig(), mean_norm=False)
    path = save_resnet_file(model, tmp_path / "model.pt", features)
    onnx_path = export_onnx(path, tmp_path / "m.onnx")
    rng = np.random.default_rng(1)
    feats = [(3 + rng.standard_normal((n, 23))).astype(np.float32) for n in (11, 50, 333, 1000)]
    ref = TorchEngine(load_bundle(path), batch_size=4)(feats)
    np.testing.assert_allclose(OnnxEngine(load_bundle(onnx_path), onnx_path, batch_size=4)(feats), ref, atol=1e-4)
    alone = TorchEngine(load_bundle(path), batch_size=1)(feats)  # padding in a batch changes nothing
    np.testing.assert_allclose(alone, ref, atol=1e-4)
