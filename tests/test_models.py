"""Thin ResNet-34 + attention pooling (paper section 3.1, Table 1, eq. 1-2)."""

import dataclasses
import json
import os

import pytest
import torch

from copypaste_ser.models import (
    PRESETS,
    EmotionResNet,
    ModelConfig,
    MultiHeadAttentionPooling,
    ThinResNet34,
    build_model,
)

torch.set_num_threads(1)


def _cfg(preset="tiny", num_classes=4, **kw):
    return ModelConfig.from_preset(preset, num_classes, **kw)


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("preset", ["paper", "cpu"])
def test_preset_shapes_follow_table_1(preset):
    torch.manual_seed(0)
    model = build_model(_cfg(preset)).eval()
    w = PRESETS[preset]["width"]
    feats = torch.randn(2, 64, 23)
    enc = model.encoder
    with torch.no_grad():
        # stem keeps T x 23 (no max-pool), then 23 -> 12 -> 6 -> 3 and T -> T/8
        x = enc.relu(enc.bn1(enc.conv1(feats.unsqueeze(1))))
        sizes = [tuple(x.shape[1:])]
        for layer in (enc.layer1, enc.layer2, enc.layer3, enc.layer4):
            x = layer(x)
            sizes.append(tuple(x.shape[1:]))
        assert sizes == [(w, 64, 23), (w, 64, 23), (2 * w, 32, 12), (4 * w, 16, 6), (8 * w, 8, 3)]
        assert enc.out_channels == 8 * w
        assert enc(feats).shape == (2, 8 * w, 8)
        assert model.embed(feats).shape == (2, 400)
        assert model(feats).shape == (2, 4)


def test_paper_preset_parameter_count():
    # Hand count (convs have no bias, BN has 2 params per channel):
    #   stem: 7*7*16 + 2*16                                            =       816
    #   stage1 (16, 3 blocks): 3 * (2*16*16*9 + 4*16)                  =    14,016
    #   stage2 (32, 4 blocks): 16*32*9 + 32*32*9 + 4*32 + proj(16*32 + 2*32)
    #                          + 3 * (2*32*32*9 + 4*32)                =    70,208
    #   stage3 (64, 6 blocks): 32*64*9 + 64*64*9 + 4*64 + proj(32*64 + 2*64)
    #                          + 5 * (2*64*64*9 + 4*64)                =   427,648
    #   stage4 (128, 3 blocks): 64*128*9 + 128*128*9 + 4*128 + proj(64*128 + 2*128)
    #                          + 2 * (2*128*128*9 + 4*128)             =   820,992
    #   encoder total                                                  = 1,333,680
    #   attention pooling: mu 32*128 + scale 32                        =     4,128
    #   embedding FC 4096*400 + 400, BN1d 2*400                        = 1,639,600
    #   output FC 400*4 + 4                                            =     1,604
    #   total                                                          = 2,979,012
    model = build_model(_cfg("paper", num_classes=4))
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(model.encoder) == 1_333_680
    assert n(model.pooling) == 4_128
    assert n(model) == 2_979_012


@pytest.mark.parametrize("t", [1, 2, 7, 8, 9, 17, 64])
def test_output_lengths_match_encoder_and_short_inputs_work(t):
    torch.manual_seed(0)
    model = build_model(_cfg()).eval()
    feats = torch.randn(1, t, 23)
    with torch.no_grad():
        out = model.encoder(feats)
        logits = model(feats, torch.tensor([t]))
    expected = -(-t // 8)  # ceil(t / 8)
    assert out.shape[-1] == expected
    assert model.output_lengths(torch.tensor([t])).tolist() == [expected]
    assert torch.isfinite(logits).all() and logits.shape == (1, 4)


def test_short_input_trains_in_a_batch():
    model = build_model(_cfg()).train()
    logits = model(torch.randn(2, 3, 23), torch.tensor([3, 1]))
    logits.sum().backward()
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()


def test_bad_inputs_raise_clear_errors():
    model = build_model(_cfg()).eval()
    # check_input, not forward, validates (checks inside forward break ONNX/torch.export)
    with pytest.raises(ValueError, match="23 features"):
        model.check_input(torch.randn(1, 16, 40))
    with pytest.raises(ValueError, match="lengths"):
        model.check_input(torch.randn(2, 16, 23), torch.tensor([16, 17]))
    with pytest.raises(ValueError, match="lengths"):
        model.check_input(torch.randn(2, 16, 23), torch.tensor([16, 0]))
    with pytest.raises(ValueError, match="at least one valid frame"):
        model.pooling.check_input(torch.randn(2, 5, 32), mask=torch.tensor([[True] * 5, [False] * 5]))
    model.check_input(torch.randn(2, 16, 23), torch.tensor([16, 3]))  # a good batch passes
    with pytest.raises(ValueError, match="preset"):
        ModelConfig.from_preset("huge", 4)
    with pytest.raises(ValueError, match="width"):
        ModelConfig(num_classes=4, width=0)
    with pytest.raises(ValueError, match="blocks"):
        ModelConfig(num_classes=4, blocks=(1, 1, 1))


# ---------------------------------------------------------------- pooling


def test_pooling_ignores_padded_frames():
    torch.manual_seed(0)
    pool = MultiHeadAttentionPooling(8, 3).eval()
    alone = torch.randn(1, 5, 8)
    other = torch.randn(1, 9, 8)
    padded = torch.cat([torch.cat([alone, 100 * torch.randn(1, 4, 8)], dim=1), other])
    padded[0, 7] = float("nan")  # garbage in padding must not leak either
    lengths = torch.tensor([5, 9])
    with torch.no_grad():
        ref = pool(alone)
        out, w = pool(padded, lengths, return_weights=True)
        out_mask = pool(padded, mask=torch.arange(9) < lengths[:, None])
        ref_other = pool(other)
    assert out.shape == (2, 3 * 8)
    torch.testing.assert_close(out[0:1], ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1:2], ref_other, atol=1e-5, rtol=0)
    torch.testing.assert_close(out_mask, out, atol=0, rtol=0)
    assert (w[0, :, 5:] == 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3))
    # without the mask, padding does change the output: the test can fail
    with torch.no_grad():
        unmasked = pool(torch.nan_to_num(padded))
    assert not torch.allclose(unmasked[0:1], ref, atol=1e-3)


def test_pooling_matches_equations_1_and_2():
    torch.manual_seed(1)
    pool = MultiHeadAttentionPooling(6, 2)
    x = torch.randn(1, 7, 6)
    with torch.no_grad():
        out = pool(x)
        # eq. (1)-(2) written out directly, one head at a time
        heads = []
        for h in range(2):
            d = (x[0] - pool.mu[h]).norm(dim=-1)
            w = torch.softmax(-pool.scale[h] * d, dim=0)
            heads.append((w[:, None] * x[0]).sum(0))
    torch.testing.assert_close(out[0], torch.cat(heads), atol=1e-5, rtol=1e-5)
    assert (pool.scale > 0).all()


def test_pooling_far_centre_is_finite_and_still_a_weighted_average():
    pool = MultiHeadAttentionPooling(4, 1)
    with torch.no_grad():
        pool.mu.fill_(1e4)
        pool.scale_param.fill_(10.0)
    x = torch.randn(2, 6, 4, requires_grad=True)
    out, w = pool(x, torch.tensor([6, 3]), return_weights=True)
    assert torch.isfinite(out).all() and torch.isfinite(w).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 1))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.isfinite(pool.mu.grad).all() and torch.isfinite(pool.scale_param.grad).all()


def test_pooling_gradient_is_finite_when_a_frame_sits_on_its_centre():
    pool = MultiHeadAttentionPooling(4, 1)
    x = pool.mu.detach().clone().reshape(1, 1, 4).repeat(1, 3, 1)
    x[0, 1] += 1.0
    pool(x).sum().backward()
    assert torch.isfinite(pool.mu.grad).all() and torch.isfinite(pool.scale_param.grad).all()


def test_gradients_reach_mu_and_scale_through_the_whole_model():
    torch.manual_seed(0)
    model = build_model(_cfg()).train()
    logits = model(torch.randn(3, 24, 23), torch.tensor([24, 20, 9]))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    for p in (model.pooling.mu, model.pooling.scale_param):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


# ---------------------------------------------------------------- transfer learning and checkpoints


def test_replace_output_keeps_everything_else():
    torch.manual_seed(0)
    model = build_model(_cfg(num_classes=10))  # e.g. a speaker classifier
    model(torch.randn(2, 16, 23))  # a training step moves BN running stats
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # transfer learning selects the head by name: only model.output's tensors are "output.*"
    head = {id(p) for p in model.output.parameters()}
    for k, p in model.named_parameters():
        assert k.startswith("output.") == (id(p) in head), k

    assert model.replace_output(4) is None
    after = model.state_dict()
    assert set(after) == set(before)
    for k, v in before.items():
        if k.startswith("output."):
            assert after[k].shape[0] == 4 and v.shape[0] == 10
        else:
            assert torch.equal(after[k], v), k
    assert model.config.num_classes == 4
    assert model.eval()(torch.randn(2, 16, 23)).shape == (2, 4)
    assert [k for k, _ in model.named_parameters() if k.startswith("output.")] == ["output.weight", "output.bias"]


def test_config_round_trips_through_dict_json_and_weights_only_checkpoint(tmp_path):
    cfg = _cfg("tiny", num_classes=7, dropout=0.25, feat_dim=23)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert isinstance(cfg.to_dict()["blocks"], list)

    torch.manual_seed(0)
    model = build_model(cfg).eval()
    path = tmp_path / "model.pt"
    torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict()}, path)
    ckpt = torch.load(path, weights_only=True)
    again = build_model(ModelConfig.from_dict(ckpt["config"]))
    again.load_state_dict(ckpt["state_dict"])
    again.eval()
    assert again.config == cfg
    feats = torch.randn(2, 20, 23)
    with torch.no_grad():
        torch.testing.assert_close(again(feats, torch.tensor([20, 11])), model(feats, torch.tensor([20, 11])))

    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({**cfg.to_dict(), "depth": 50})


def test_config_defaults_are_the_paper():
    cfg = ModelConfig(num_classes=4)
    assert dataclasses.asdict(cfg) | {"num_classes": 4} == dataclasses.asdict(_cfg("paper")) | {"dropout": 0.0}
    assert isinstance(build_model(cfg), EmotionResNet)
    assert isinstance(build_model(cfg).encoder, ThinResNet34)


def test_channels_last_on_cpu_gives_the_same_scores_and_gradients():
    from copypaste_ser.models.placement import place

    torch.manual_seed(0)
    standard = build_model(ModelConfig(num_classes=4, width=8, blocks=(1, 1, 1, 1), heads=4, embed_dim=32))
    fast = place(build_model(ModelConfig(num_classes=4, width=8, blocks=(1, 1, 1, 1), heads=4, embed_dim=32)),
                 channels_last=True)
    fast.load_state_dict(standard.state_dict())
    convs = [m.weight for m in fast.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert any(not w.is_contiguous() for w in convs)
    x, y = torch.randn(3, 150, 23), torch.tensor([0, 2, 3])
    outs = []
    for model in (standard, fast):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        outs.append((model(x).detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(outs[0][1], outs[1][1]))  # gradients up to 1.8


def test_channels_last_is_off_unless_the_user_turns_it_on(monkeypatch):
    from copypaste_ser.models.placement import CHANNELS_LAST_ENV, place

    def conv_weights(model):
        return [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]

    cfg = ModelConfig(num_classes=4, width=8, blocks=(1, 1, 1, 1), heads=4, embed_dim=32)
    monkeypatch.delenv(CHANNELS_LAST_ENV, raising=False)
    assert all(w.is_contiguous() for w in conv_weights(place(build_model(cfg))))
    monkeypatch.setenv(CHANNELS_LAST_ENV, "1")
    assert any(not w.is_contiguous() for w in conv_weights(place(build_model(cfg))))


def test_the_thin_resnet_trains_on_lengths_that_crashed_channels_last(tmp_path):
    """On an AMD EPYC (Zen 4), torch 2.13's channels-last backward corrupted the heap for a
    399-frame batch of the tiny model; the default placement must train it. In a child process,
    as a crash would take pytest down with it."""
    import subprocess
    import sys

    from copypaste_ser.models.placement import CHANNELS_LAST_ENV

    script = (
        "import torch\n"
        "from copypaste_ser.models.classifier import ModelConfig, build_model\n"
        "from copypaste_ser.models.placement import place\n"
        "torch.manual_seed(0); torch.set_num_threads(1)\n"
        "for frames in (380, 399, 400):\n"
        "    model = place(build_model(ModelConfig.from_preset('tiny', 4)))\n"
        "    model(torch.randn(4, frames, 23)).sum().backward()\n"
        "    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())\n"
        "print('trained')\n")
    env = {k: v for k, v in os.environ.items() if k != CHANNELS_LAST_ENV}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "trained", done.stderr[-2000:]
