"""SpecAugment masks and the augmentation chain a run builds from its config."""

from __future__ import annotations

import numpy as np
import pytest

from copypaste_ser.augment.copypaste import CopyPaste
from copypaste_ser.augment.pipeline import training_augmentation
from copypaste_ser.augment.reencode import ReencodeConcatenations
from copypaste_ser.augment.specaugment import Chain, SpecAugment
from copypaste_ser.errors import UserError
from copypaste_ser.training.config import make_config


def test_masks_fill_bands_with_the_item_mean_and_keep_the_input():
    x = np.random.default_rng(0).standard_normal((200, 23)).astype(np.float32)
    original = x.copy()
    aug = SpecAugment(p=1.0, time_masks=1, time_width=0.2, freq_masks=1, freq_width=5, seed=1)
    out = aug.mask(x)
    np.testing.assert_array_equal(x, original)
    mean = x.mean(0)
    changed = ~np.isclose(out, x)
    rows = np.where(changed.all(axis=1) | np.isclose(out, mean).all(axis=1))[0]
    cols = np.where(np.isclose(out, mean[None]).all(axis=0))[0]
    assert changed.any()
    # every changed value lies in a masked row band or a masked column band, filled with the mean
    assert np.allclose(out[changed], np.broadcast_to(mean, out.shape)[changed])
    assert len(rows) <= 0.2 * 200 + 1 and len(cols) <= 5


def test_p_zero_returns_items_unchanged_and_seed_repeats():
    items = [np.ones((50, 23), np.float32) * k for k in range(3)]
    out, labels = SpecAugment(p=0.0, seed=0)(items, [0, 1, 2])
    assert all(o is i for o, i in zip(out, items)) and labels == [0, 1, 2]
    x = [np.random.default_rng(3).standard_normal((80, 23)).astype(np.float32)]
    a = SpecAugment(seed=5)(x, [0])[0][0]
    b = SpecAugment(seed=5)(x, [0])[0][0]
    np.testing.assert_array_equal(a, b)


def test_chain_runs_in_order_and_exposes_the_copypaste_plan():
    items = [np.full((40, 23), float(k), np.float32) for k in range(4)]
    cp = CopyPaste("n-cp", neutral_label=0, p=1.0, seed=0)
    chain = Chain(cp, SpecAugment(p=1.0, time_masks=0, freq_masks=0, seed=0))
    out, labels = chain(items, [0, 1, 2, 3])
    assert chain.last_plan is cp.last_plan and chain.last_plan.scheme == "n-cp"
    assert all(len(o) == 80 for o in out) and labels == [0, 1, 2, 3]


def test_training_augmentation_from_config(tmp_path):
    cfg = make_config("tiny", copypaste="n-cp", spec_augment=True)
    aug = training_augmentation(cfg, 0, "cfg")
    assert isinstance(aug, Chain) and isinstance(aug.steps[0], CopyPaste) and isinstance(aug.steps[1], SpecAugment)
    assert training_augmentation(make_config("tiny"), 0, "cfg") is None
    states = make_config("tiny", copypaste="n-cp", init="resemblyzer-attention")
    assert isinstance(training_augmentation(states, 0, "cfg"), ReencodeConcatenations)
    with pytest.raises(UserError, match="spec_augment works on MFCC"):
        training_augmentation(make_config("tiny", init="resemblyzer-attention", spec_augment=True), 0, "cfg")
