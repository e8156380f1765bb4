"""Scores of a model never depend on what else is in the batch (models/scoring.predict_proba)."""

import numpy as np
import torch

from copypaste_ser.models import ModelConfig, build_model
from copypaste_ser.models.scoring import predict_proba


def test_a_resnet_scores_each_utterance_as_it_would_alone():
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_preset("tiny", 4)).eval()
    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((n, 23)).astype(np.float32) for n in (57, 130, 130, 211)]
    together = predict_proba(model, feats)
    alone = np.concatenate([predict_proba(model, [f]) for f in feats])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    # what padding would have done: the short one scored inside a batch of the long one differs
    from copypaste_ser.features.batches import pad_batch
    x, lengths, _ = pad_batch([feats[0], feats[3]], [0, 0], True)
    with torch.no_grad():
        padded = torch.softmax(model(x, lengths), -1)[0].numpy()
    assert np.abs(padded - alone[0]).max() > 1e-4


def test_input_statistics_stream_item_by_item_and_match_the_concatenation():
    from copypaste_ser.models.standardise import frame_statistics

    rng = np.random.default_rng(0)
    items = [rng.normal(5, 3, (int(rng.integers(5, 50)), 7)).astype(np.float32) for _ in range(30)]
    mean, std = frame_statistics(iter(items))  # a generator: nothing is held but the running sums
    frames = torch.cat([torch.tensor(x) for x in items])
    torch.testing.assert_close(mean, frames.mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(std, frames.std(0), atol=1e-5, rtol=0)
