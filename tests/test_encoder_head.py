"""The speaker-pretrained emotion model: frozen Resemblyzer states + attention head, exact CopyPaste."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from copypaste_ser.augment.copypaste import CopyPaste
from copypaste_ser.augment.reencode import ReencodeConcatenations
from copypaste_ser.data.manifest import Utterance
from copypaste_ser.features.cache import extract_features
from copypaste_ser.features.encoders import (
    MEL_DIM,
    STATES_DIM,
    ResemblyzerStates,
    encode_arrays,
    resemblyzer_available,
)
from copypaste_ser.features.mfcc import resemblyzer_states_features
from copypaste_ser.models.encoder_head import EncoderAttentionEmotion, EncoderHeadConfig

needs_weights = pytest.mark.skipif(not resemblyzer_available(), reason="resemblyzer wheel not installed")


@pytest.fixture(scope="module")
def encoder() -> ResemblyzerStates:
    torch.manual_seed(0)
    return ResemblyzerStates(pretrained=False).eval()


def frames(encoder, n: int, seed: int) -> np.ndarray:
    mel = np.random.default_rng(seed).random((n, MEL_DIM)).astype(np.float32)
    return np.concatenate([mel, encode_arrays([mel], encoder)[0]], axis=1)


@pytest.mark.parametrize("pooling", ["attention", "meanstd"])
def test_shapes_and_padding_masked(encoder, pooling):
    torch.manual_seed(0)
    model = EncoderAttentionEmotion(EncoderHeadConfig(num_classes=5, pooling=pooling)).eval()
    a, b = frames(encoder, 30, 1), frames(encoder, 50, 2)
    x = torch.zeros(2, 50, MEL_DIM + STATES_DIM)
    x[0, :30], x[1] = torch.from_numpy(a), torch.from_numpy(b)
    x[0, 30:] = 1e3  # padding with garbage must not reach the output
    logits = model(x, torch.tensor([30, 50]))
    assert logits.shape == (2, 5)
    alone = model(torch.from_numpy(a)[None], torch.tensor([30]))
    torch.testing.assert_close(logits[0], alone[0], rtol=1e-5, atol=1e-5)


def test_input_stats_standardise_states_only(encoder):
    model = EncoderAttentionEmotion(EncoderHeadConfig(num_classes=3))
    items = [frames(encoder, n, s) for s, n in enumerate((20, 40, 25))]
    model.fit_input_stats(items)
    states = np.concatenate([f[:, MEL_DIM:] for f in items])
    np.testing.assert_allclose(model.in_mean.numpy(), states.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.in_std.numpy(), np.maximum(states.std(0, ddof=1), 1e-3), rtol=1e-3)


def test_reencoded_concatenation_is_what_the_encoder_hears(encoder):
    items = [frames(encoder, n, s) for s, n in enumerate((30, 40, 35, 45))]
    labels = [0, 1, 1, 2]  # 0 is neutral
    aug = ReencodeConcatenations(CopyPaste("n-cp", neutral_label=0, p=1.0, seed=3), encoder)
    out, out_labels = aug(items, labels)
    plan = aug.last_plan
    assert plan.scheme == "n-cp" and aug.reencoded == 4
    for k, entry in enumerate(plan.entries):
        mel = np.concatenate([items[i][s: s + n, :MEL_DIM] for i, (s, n) in zip(entry.sources, entry.pieces)])
        np.testing.assert_allclose(out[k][:, :MEL_DIM], mel)
        with torch.no_grad():
            heard = encoder(torch.from_numpy(mel)[None])[0].numpy()
        np.testing.assert_allclose(out[k][:, MEL_DIM:], heard, rtol=1e-4, atol=1e-5)
        naive = np.concatenate([items[i][s: s + n, MEL_DIM:] for i, (s, n) in zip(entry.sources, entry.pieces)])
        assert not np.allclose(naive, heard, atol=1e-3)  # cached states pasted together differ
    assert out_labels == labels


def test_unaugmented_batch_keeps_cached_states(encoder):
    items = [frames(encoder, 20, s) for s in range(3)]
    aug = ReencodeConcatenations(CopyPaste("n-cp", neutral_label=0, p=0.0, seed=0), encoder)
    out, _ = aug(items, [0, 1, 2])
    assert aug.reencoded == 0 and all(o is i for o, i in zip(out, items))


def test_frozen_encoder_and_stats_stay_fixed_in_training(encoder):
    model = EncoderAttentionEmotion(EncoderHeadConfig(num_classes=2))
    items = [frames(encoder, 30, s) for s in range(4)]
    model.fit_input_stats(items)
    before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("in_")}
    enc_before = {k: v.clone() for k, v in encoder.state_dict().items()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 1e-2)
    x = torch.from_numpy(np.stack(items))
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model.train()(x, torch.full((4,), 30)), torch.tensor([0, 1, 0, 1]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in before.items():
        assert torch.equal(model.state_dict()[k], v)
    for k, v in enc_before.items():
        assert torch.equal(encoder.state_dict()[k], v)


@needs_weights
def test_cache_and_mel_input_match(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(t.size))
    sf.write(tmp_path / "a.wav", wave.astype(np.float32), 16000)
    utt = Utterance(id="a", audio=str(tmp_path / "a.wav"), speaker="s", emotion="neutral", duration=2.0)
    cfg = resemblyzer_states_features()
    feats = extract_features([utt], cfg, tmp_path, progress=False)["a"]
    assert feats.shape[1] == MEL_DIM + STATES_DIM == cfg.dim
    np.testing.assert_allclose(feats[:, MEL_DIM:], encode_arrays([feats[:, :MEL_DIM]])[0], rtol=1e-4, atol=1e-5)
    model = EncoderAttentionEmotion(EncoderHeadConfig(num_classes=4)).eval()
    x = torch.from_numpy(np.array(feats))[None]
    torch.testing.assert_close(model(x), model(x[..., :MEL_DIM]), rtol=1e-4, atol=1e-5)


def tuned(encoder, k: int, **kw) -> EncoderAttentionEmotion:
    torch.manual_seed(0)
    model = EncoderAttentionEmotion(EncoderHeadConfig(num_classes=3, tuned_layers=k, **kw))
    model.load_tuned_layers(encoder)
    return model


@pytest.mark.parametrize("k", [1, 2, 3])
def test_tuned_layers_start_as_the_encoder_and_mask_padding(encoder, k):
    model = tuned(encoder, k).eval()
    a, b = frames(encoder, 30, 1), frames(encoder, 50, 2)
    x = torch.zeros(2, 50, MEL_DIM + STATES_DIM)
    x[0, :30], x[1] = torch.from_numpy(a), torch.from_numpy(b)
    x[0, 30:] = 1e3
    with torch.no_grad():  # the tuned copies, run on the cached lower states, give the cached top states
        torch.testing.assert_close(model.states(x)[1], x[1, :, MEL_DIM:], rtol=1e-4, atol=1e-5)
        logits = model(x, torch.tensor([30, 50]))
        alone = model(torch.from_numpy(a)[None], torch.tensor([30]))
    torch.testing.assert_close(logits[0], alone[0], rtol=1e-5, atol=1e-5)


def test_tuned_layer_trains_at_its_own_rate_and_lower_layers_stay_cached(encoder):
    from copypaste_ser.training.config import TrainConfig
    from copypaste_ser.training.model_setup import make_optimizer

    model = tuned(encoder, 1)
    opt = make_optimizer(model, TrainConfig(lr=1e-2, encoder_lr_scale=0.1, weight_decay=0.01))
    tuned_ids = {id(p) for p in model.tuned.parameters()}
    groups = [({id(p) for p in g["params"]}, g["lr"]) for g in opt.param_groups]
    assert groups[0] == (tuned_ids, pytest.approx(1e-3))
    assert groups[1][0] == {id(p) for p in model.parameters()} - tuned_ids and groups[1][1] == 1e-2
    items = [frames(encoder, 30, s) for s in range(4)]
    x = torch.from_numpy(np.stack(items))
    before = {k: v.clone() for k, v in model.tuned.state_dict().items()}
    enc_before = {k: v.clone() for k, v in encoder.state_dict().items()}
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model.train()(x, torch.full((4,), 30)), torch.tensor([0, 1, 2, 1]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(not torch.equal(model.tuned.state_dict()[k], v) for k, v in before.items())
    for k, v in enc_before.items():  # the shared encoder (and so the cache) is untouched
        assert torch.equal(encoder.state_dict()[k], v)
    with torch.no_grad():  # layers 1-2 still come from the input, layer 3 is the tuned one's
        states = model.eval().states(x)
    torch.testing.assert_close(states[..., :512], x[..., MEL_DIM: MEL_DIM + 512])
    assert not torch.allclose(states[..., 512:], x[..., MEL_DIM + 512:], atol=1e-4)


def test_tuned_model_file_round_trip(encoder):
    from copypaste_ser.models.scoring import build_arch

    model = tuned(encoder, 1, pooling="meanstd")
    rebuilt = build_arch("resemblyzer-attention", model.config.to_dict())
    rebuilt.load_state_dict(model.state_dict())  # same keys and shapes, tuned layer included
    x = torch.from_numpy(frames(encoder, 25, 4))[None]
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), model.eval()(x))
    with pytest.raises(ValueError, match="tuned_layers"):
        EncoderHeadConfig.from_dict({"num_classes": 3, "tuned_layers": 4})


@needs_weights
def test_head_options_reach_the_model_and_are_refused_elsewhere():
    from copypaste_ser.errors import UserError
    from copypaste_ser.training.config import TrainConfig
    from copypaste_ser.training.model_setup import build_emotion_model

    cfg = TrainConfig(init="resemblyzer-attention", head_pooling="meanstd", encoder_tune_layers=1,
                      features=resemblyzer_states_features().to_dict())
    model, provenance = build_emotion_model(cfg, 4)
    assert model.config.pooling == "meanstd" and model.pool is None and len(model.tuned) == 1
    assert "fine-tuned" in provenance["init_corpus"]
    for option in ({"head_pooling": "meanstd"}, {"encoder_tune_layers": 1}):
        with pytest.raises(UserError, match=f"{next(iter(option))}: applies to init 'resemblyzer-attention'"):
            build_emotion_model(TrainConfig(**option), 4)


@needs_weights
def test_the_concat_probe_re_encodes_the_joined_mel_for_encoder_states():
    from copypaste_ser.evaluation.evaluate import exact_concatenations
    from copypaste_ser.features.mfcc import FeatureConfig, resemblyzer_states_features

    rng = np.random.default_rng(0)
    mel_a, mel_b = rng.random((120, MEL_DIM), np.float32), rng.random((90, MEL_DIM), np.float32)
    cached = [np.concatenate([m, s], axis=1) for m, s in zip((mel_a, mel_b), encode_arrays([mel_a, mel_b]))]
    joined_cached = np.concatenate(cached)  # what the probe used to feed the model
    (exact,) = exact_concatenations([joined_cached], resemblyzer_states_features())
    (fresh,) = encode_arrays([np.concatenate([mel_a, mel_b])])
    np.testing.assert_allclose(exact[:, MEL_DIM:], fresh, atol=1e-5)
    np.testing.assert_array_equal(exact[:, :MEL_DIM], joined_cached[:, :MEL_DIM])
    # the second piece's cached states are not what the encoder computes after the first piece
    assert np.abs(joined_cached[120:, MEL_DIM:] - fresh[120:]).max() > 1e-2
    # frame-local features pass unchanged
    assert exact_concatenations([joined_cached], FeatureConfig())[0] is joined_cached


def test_a_layer_mix_is_a_softmax_weighted_sum_of_the_standardised_layers():
    from copypaste_ser.models.encoder_head import LayerMix

    head = EncoderAttentionEmotion(EncoderHeadConfig(num_classes=3, encoder="whisper", input_dim=160 + 3 * 8,
                                                     whisper_model="base", whisper_layer=2, whisper_width=8,
                                                     layer_mix=True)).eval()
    assert head.config.layers == (0, 1, 2) and head.in_mean.shape == (24,) and head.proj.in_features == 8
    torch.manual_seed(0)
    states = torch.randn(2, 5, 24)
    with torch.no_grad():  # starting weights are equal: the mean of the layers
        np.testing.assert_allclose(head.mix(states).numpy(), states.view(2, 5, 3, 8).mean(2).numpy(), atol=1e-6)
        head.mix.logits.copy_(torch.tensor([2.0, -1.0, 0.5]))
        head.in_mean.copy_(torch.randn(24))
        head.in_std.copy_(torch.rand(24) + 0.5)
        w = torch.softmax(head.mix.logits, 0)
        z = (states - head.in_mean) / head.in_std
        expected = sum(w[k] * z[..., 8 * k: 8 * (k + 1)] for k in range(3))
        np.testing.assert_allclose(head.mix(z).numpy(), expected.numpy(), atol=1e-6)
    rows = torch.cat([torch.zeros(2, 5, 160), states], -1)
    with torch.no_grad():  # the head reads the cached states through the same mix
        logits = head(rows)
        manual = head.output(head.embedding(head.pool(head.proj(expected), torch.tensor([5, 5]))))
    np.testing.assert_allclose(logits.numpy(), manual.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="layer_mix"):
        EncoderHeadConfig.from_dict({"num_classes": 2, "layer_mix": True})
    assert isinstance(LayerMix(4).weights(), torch.Tensor) and LayerMix(4).weights().sum().item() == pytest.approx(1)
