"""Tests for copypaste_ser.augment.copypaste.CopyPaste (property tests + unit tests)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copypaste_ser.augment import SCHEMES, CopyPaste
from copypaste_ser.augment.copypaste import CopyPastePlan

NEUTRAL = 0
N_CLASSES = 4
STRIDE = 1000.0  # value = utterance * STRIDE + time (+ feature / 10 for 2-D items)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- helpers
def make_item(idx: int, length: int, dim: int | None, kind: str):
    """Item whose values encode (utterance index, time index[, feature index])."""
    t = np.arange(length, dtype=np.float64) + idx * STRIDE
    x = t if dim is None else t[:, None] + np.arange(dim)[None, :] / 10.0
    return torch.from_numpy(x.copy()) if kind == "torch" else x


def as_np(x) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


@st.composite
def batches(draw, min_size: int = 1, max_size: int = 64):
    n = draw(st.integers(min_size, max_size))
    with_neutral = draw(st.booleans())
    low = 0 if with_neutral else 1
    labels = draw(st.lists(st.integers(low, N_CLASSES - 1), min_size=n, max_size=n))
    dim = draw(st.sampled_from([None, 1, 3]))
    kind = draw(st.sampled_from(["numpy", "torch", "mixed"]))
    lengths = draw(st.lists(st.integers(1, 50), min_size=n, max_size=n))
    items = []
    for i, length in enumerate(lengths):
        k = kind if kind != "mixed" else ("torch" if i % 2 else "numpy")
        items.append(make_item(i, length, dim, k))
    return items, labels, dim


piece_lengths = st.one_of(st.none(), st.integers(1, 20))
seeds = st.integers(0, 2**32 - 1)


def check_structure(cp: CopyPaste, items, labels, out, out_labels, dim):
    """Checks valid for every scheme: plan vs. content, lengths, types, feature dim."""
    plan = cp.last_plan
    assert isinstance(plan, CopyPastePlan)
    assert len(plan.entries) == len(out) == len(out_labels)
    for entry, y, lab in zip(plan.entries, out, out_labels):
        i = entry.anchor
        assert lab == labels[i]
        assert type(y) is type(items[i])  # container type of the anchor item
        y = as_np(y)
        if dim is not None:
            assert y.ndim == 2 and y.shape[1] == dim
        else:
            assert y.ndim == 1
        assert len(entry.sources) == len(entry.pieces) in (1, 2)
        assert i in entry.sources
        # each part is a contiguous piece of its source, of the expected length
        pos = 0
        for src, (start, length) in zip(entry.sources, entry.pieces):
            src_len = len(items[src])
            if len(entry.sources) == 1:
                assert (start, length) == (0, src_len)  # unchanged items are never cropped
            else:
                expected = src_len if cp.piece_length is None else min(cp.piece_length, src_len)
                assert length == expected
            assert 0 <= start and start + length <= src_len
            part = y[pos : pos + length]
            np.testing.assert_array_equal(part, as_np(items[src])[start : start + length])
            # decoded from the values, independently of the plan: utterance and time
            col = part if part.ndim == 1 else part[:, 0]
            np.testing.assert_array_equal(col // STRIDE, src)
            np.testing.assert_array_equal(col % STRIDE, np.arange(start, start + length))
            pos += length
        assert pos == len(y)  # output length == sum of the part lengths


# ---------------------------------------------------------------- properties
@SETTINGS
@given(batches(), piece_lengths, seeds, st.sampled_from(["replace", "add"]))
def test_ncp_properties(batch, piece_length, seed, mode):
    items, labels, dim = batch
    cp = CopyPaste("n-cp", neutral_label=NEUTRAL, p=1.0, piece_length=piece_length, mode=mode, seed=seed)
    out, out_labels = cp(items, labels)
    check_structure(cp, items, labels, out, out_labels, dim)
    plan = cp.last_plan
    neutrals = [k for k, lab in enumerate(labels) if lab == NEUTRAL]
    if not neutrals:
        assert plan.scheme == "none"
        assert out_labels == labels and all(a is b for a, b in zip(out, items))
        return
    assert plan.scheme == "n-cp"
    concats = [e for e in plan.entries if len(e.sources) == 2]
    assert len(concats) == len(items)  # every utterance, neutral ones included
    assert len(out) == (2 * len(items) if mode == "add" else len(items))
    for e in concats:
        a, b = e.sources
        j = b if a == e.anchor else a
        label = labels[e.anchor]
        assert labels[j] == NEUTRAL  # exactly one (the partner) is the neutral pair part
        non_neutral = [labels[s] for s in (a, b) if labels[s] != NEUTRAL]
        assert label == (non_neutral[0] if non_neutral else NEUTRAL)
        if labels[e.anchor] == NEUTRAL and len(neutrals) > 1:
            assert j != e.anchor
        if len(neutrals) == 1 and labels[e.anchor] == NEUTRAL:
            assert j == e.anchor  # a lone neutral is paired with itself


@SETTINGS
@given(batches(), piece_lengths, seeds)
def test_secp_properties(batch, piece_length, seed):
    items, labels, dim = batch
    cp = CopyPaste("se-cp", p=1.0, piece_length=piece_length, seed=seed)
    out, out_labels = cp(items, labels)
    check_structure(cp, items, labels, out, out_labels, dim)
    plan = cp.last_plan
    counts = {lab: labels.count(lab) for lab in labels}
    if all(c == 1 for c in counts.values()):
        assert plan.scheme == "none"
    else:
        assert plan.scheme == "se-cp"
    assert len(out) == len(items)
    for k, e in enumerate(plan.entries):
        assert e.anchor == k
        if counts[labels[k]] == 1:  # singleton: kept as is
            assert e.sources == (k,)
            assert out[k] is items[k]
        else:
            a, b = e.sources
            assert a != b
            assert labels[a] == labels[b] == out_labels[k]  # no pair mixes emotions


@SETTINGS
@given(batches(max_size=16), piece_lengths, seeds, st.sampled_from(SCHEMES[1:]))
def test_same_seed_same_output(batch, piece_length, seed, scheme):
    items, labels, _ = batch
    kw = dict(neutral_label=NEUTRAL, p=0.8, piece_length=piece_length)
    a = CopyPaste(scheme, seed=seed, **kw)
    b = CopyPaste(scheme, seed=seed, **kw)
    for _ in range(3):
        out_a, lab_a = a(items, labels)
        out_b, lab_b = b(items, labels)
        assert lab_a == lab_b and a.last_plan == b.last_plan
        assert len(out_a) == len(out_b)
        for x, y in zip(out_a, out_b):
            np.testing.assert_array_equal(as_np(x), as_np(y))


# ---------------------------------------------------------------- unit tests
def rich_batch(n: int = 8, length: int = 30, dim: int | None = 2):
    """Batch that always has neutrals and repeated labels."""
    labels = [k % N_CLASSES for k in range(n)]
    return [make_item(i, length, dim, "numpy") for i in range(n)], labels


@pytest.mark.parametrize(
    "scheme, expected",
    [("n-cp", {"n-cp": 0.8}), ("se-cp", {"se-cp": 0.8}), ("n+se-cp", {"n-cp": 0.4, "se-cp": 0.4})],
)
def test_share_of_augmented_batches(scheme, expected):
    items, labels = rich_batch(n=8, length=4, dim=None)
    cp = CopyPaste(scheme, neutral_label=NEUTRAL, piece_length=2, seed=123)
    calls = 4000
    seen = {"none": 0, "n-cp": 0, "se-cp": 0}
    for _ in range(calls):
        cp(items, labels)
        seen[cp.last_plan.scheme] += 1
    for name in ("n-cp", "se-cp"):
        share = seen[name] / calls
        assert abs(share - expected.get(name, 0.0)) < 0.035, (name, share)
    assert abs(seen["none"] / calls - 0.2) < 0.035


def test_p_zero_and_scheme_none_return_batch_unchanged():
    items, labels = rich_batch()
    for cp in (CopyPaste("n-cp", neutral_label=0, p=0.0, seed=1), CopyPaste("none", p=1.0, seed=1)):
        out, out_labels = cp(items, labels)
        assert out_labels == labels
        assert all(a is b for a, b in zip(out, items)) and len(out) == len(items)
        assert cp.last_plan.scheme == "none" and not cp.last_plan.augmented


def test_different_seeds_differ_and_reseed_restarts():
    items, labels = rich_batch(n=32)
    outs = []
    for seed in (0, 1):
        cp = CopyPaste("n-cp", neutral_label=0, p=1.0, piece_length=10, seed=seed)
        cp(items, labels)
        outs.append(cp.last_plan)
    assert outs[0] != outs[1]
    cp = CopyPaste("n+se-cp", neutral_label=0, piece_length=10, seed=5)
    first = [(cp(items, labels), cp.last_plan)[1] for _ in range(5)]
    cp.reseed(5)
    again = [(cp(items, labels), cp.last_plan)[1] for _ in range(5)]
    assert first == again


def test_add_mode_doubles_batch_originals_first():
    items, labels = rich_batch(n=8)
    for scheme in ("n-cp", "se-cp"):
        cp = CopyPaste(scheme, neutral_label=0, p=1.0, piece_length=5, mode="add", seed=3)
        out, out_labels = cp(items, labels)
        assert len(out) == 16 and out_labels == labels + labels
        assert all(a is b for a, b in zip(out[:8], items))
        assert all(len(e.sources) == 2 for e in cp.last_plan.entries[8:])
        assert all(len(x) == 10 for x in out[8:])


def test_order_options():
    items, labels = rich_batch(n=16)
    for order, pos in (("emotional-first", 0), ("partner-first", 1)):
        cp = CopyPaste("n-cp", neutral_label=0, p=1.0, piece_length=5, order=order, seed=0)
        cp(items, labels)
        assert all(e.sources[pos] == e.anchor for e in cp.last_plan.entries)
    cp = CopyPaste("se-cp", p=1.0, piece_length=5, seed=0)
    first = 0
    total = 0
    for _ in range(100):
        cp(items, labels)
        first += sum(e.sources[0] == e.anchor for e in cp.last_plan.entries)
        total += len(cp.last_plan.entries)
    assert 0.4 < first / total < 0.6  # fair coin per pair


def test_neutral_partner_uniform_and_not_self():
    # 3 neutrals: each neutral picks one of the other two, each about half of the time
    items = [make_item(i, 5, None, "numpy") for i in range(5)]
    labels = [0, 0, 0, 1, 2]
    cp = CopyPaste("n-cp", neutral_label=0, p=1.0, order="emotional-first", seed=9)
    picks = np.zeros((5, 5))
    for _ in range(600):
        cp(items, labels)
        for e in cp.last_plan.entries:
            picks[e.anchor, e.sources[1]] += 1
    assert picks[:, 3:].sum() == 0 and np.all(np.diag(picks)[:3] == 0)
    assert np.all(np.abs(picks[0, 1:3] / 600 - 0.5) < 0.1)
    assert np.all(np.abs(picks[3, :3] / 600 - 1 / 3) < 0.1)


def test_torch_items_and_whole_recordings():
    items = [torch.randn(n, 23) for n in (7, 9, 4, 6)]
    labels = [0, 1, 1, 0]
    cp = CopyPaste("n-cp", neutral_label=0, p=1.0, piece_length=None, order="emotional-first", seed=2)
    out, out_labels = cp(items, labels)
    assert out_labels == labels
    for e, y in zip(cp.last_plan.entries, out):
        i, j = e.sources
        assert isinstance(y, torch.Tensor) and y.shape == (len(items[i]) + len(items[j]), 23)
        assert torch.equal(y, torch.cat([items[i], items[j]]))


def test_errors():
    with pytest.raises(ValueError, match="N-CP needs the neutral label"):
        CopyPaste("n-cp")
    with pytest.raises(ValueError, match="N-CP needs the neutral label"):
        CopyPaste("n+se-cp")
    with pytest.raises(ValueError, match="se-cp"):
        CopyPaste("cutmix", neutral_label=0)
    with pytest.raises(ValueError, match="replace"):
        CopyPaste("se-cp", mode="double")
    with pytest.raises(ValueError, match="emotional-first"):
        CopyPaste("se-cp", order="neutral-first")
    with pytest.raises(ValueError, match="p must be"):
        CopyPaste("se-cp", p=1.5)
    with pytest.raises(ValueError, match="piece_length"):
        CopyPaste("se-cp", piece_length=0)
    cp = CopyPaste("se-cp", p=1.0, seed=0)
    with pytest.raises(ValueError, match="3 items but 2 labels"):
        cp([np.zeros(3)] * 3, [1, 1])
    with pytest.raises(ValueError, match="concatenate"):
        cp([np.zeros((3, 2)), np.zeros((3, 5))], [1, 1])


def test_piece_start_is_random_and_covers_range():
    items = [make_item(i, 12, None, "numpy") for i in range(4)]
    labels = [0, 1, 0, 1]
    cp = CopyPaste("n-cp", neutral_label=0, p=1.0, piece_length=4, seed=11)
    starts = {"anchor": [], "partner": []}
    for _ in range(300):
        cp(items, labels)
        for e in cp.last_plan.entries:
            for src, (start, _) in zip(e.sources, e.pieces):
                starts["anchor" if src == e.anchor else "partner"].append(start)
    for role in starts:
        counts = np.bincount(starts[role], minlength=9)
        assert len(counts) == 9 and np.all(counts > 0), role  # every start 0..8 occurs


def test_add_mode_does_not_duplicate_singletons():
    items = [make_item(i, 6, None, "numpy") for i in range(5)]
    labels = [1, 1, 2, 3, 3]  # class 2 is a singleton
    cp = CopyPaste("se-cp", p=1.0, mode="add", seed=0)
    out, out_labels = cp(items, labels)
    assert len(out) == 9 and out_labels[:5] == labels and sorted(out_labels[5:]) == [1, 1, 3, 3]
    assert all(a is b for a, b in zip(out[:5], items))
