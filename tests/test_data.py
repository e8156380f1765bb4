"""data.py: DDP shards, per-epoch shuffling, chunk -> CopyPaste -> mean-norm order, pieces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from copypaste_ser.augment.copypaste import CopyPaste
from copypaste_ser.features.batches import Item, TrainBatches
from copypaste_ser.training.config import TrainConfig, make_config, normalized

NEUTRAL = 0


def corpus(n: int = 45, dim: int = 3) -> tuple[list[Item], dict[str, np.ndarray]]:
    """Items of 4 classes with lengths 20..59 frames; feature column 0 holds the item number
    plus a ramp, so a frame tells which item and where it came from."""
    items, feats = [], {}
    for k in range(n):
        length = 20 + (7 * k) % 40
        x = np.zeros((length, dim), dtype=np.float32)
        x[:, 0] = 1000 * k + np.arange(length)
        x[:, 1:] = np.random.default_rng(k).normal(size=(length, dim - 1))
        items.append(Item(f"u{k}", k % 4))
        feats[f"u{k}"] = x
    return items, feats


def batches(world: int, rank: int, augment=None, chunk: int = 1000, mean_norm: bool = False,
            epoch: int = 1, n: int = 45, batch_size: int = 16):
    items, feats = corpus(n)
    tb = TrainBatches(items, lambda it: feats[it.utt_id], batch_size, chunk, augment, seed=3,
                      rank=rank, world_size=world, mean_norm=mean_norm)
    out = []
    for x, lengths, y in tb.epoch(epoch):
        plan = getattr(augment, "last_plan", None)
        out.append((x, lengths, y, tb.global_size, plan))
    return out


def item_ids(x: torch.Tensor, lengths: torch.Tensor) -> list[int]:
    return [int(x[i, 0, 0].item()) // 1000 for i in range(len(lengths))]


def test_shards_are_disjoint_and_complete():
    r0, r1 = batches(2, 0), batches(2, 1)
    whole = batches(1, 0)
    assert len(r0) == len(r1) == len(whole) == 3  # 45 items, batch 16: 16 + 16 + 13
    seen: list[int] = []
    for (x0, l0, _, g0, _), (x1, l1, _, g1, _), (xw, lw, _, gw, _) in zip(r0, r1, whole):
        a, b = item_ids(x0, l0), item_ids(x1, l1)
        assert not set(a) & set(b)
        assert sorted(a + b) == sorted(item_ids(xw, lw))
        assert g0 == g1 == gw == len(a) + len(b)
        seen += a + b
    assert sorted(seen) == list(range(45))  # every item once per epoch


def test_small_tail_joins_the_batch_before():
    # 36 items, batch 16: the 4-item tail gives two ranks 2 each -> kept; 34: a 2-item tail joins
    assert [len(b[1]) for b in batches(2, 0, n=36)] == [8, 8, 2]
    assert [b[3] for b in batches(2, 0, n=34)] == [16, 18]


def test_reshuffled_per_epoch_and_reproducible():
    first = [item_ids(x, l) for x, l, *_ in batches(1, 0, epoch=1)]
    again = [item_ids(x, l) for x, l, *_ in batches(1, 0, epoch=1)]
    second = [item_ids(x, l) for x, l, *_ in batches(1, 0, epoch=2)]
    assert first == again
    assert first != second and sorted(sum(first, [])) == sorted(sum(second, []))


@pytest.mark.parametrize("mode", ["replace", "add"])
def test_two_ranks_together_are_one_process(mode):
    """Same seed: the shards, interleaved, are exactly the one-process batch, and every rank
    applied the same CopyPaste plan (decision and partners over the global batch)."""
    def cp():
        return CopyPaste("n-cp", neutral_label=NEUTRAL, p=0.8, piece_length=10, mode=mode, seed=0)

    whole = batches(1, 0, cp(), chunk=25, mean_norm=True, epoch=4)
    r0 = batches(2, 0, cp(), chunk=25, mean_norm=True, epoch=4)
    r1 = batches(2, 1, cp(), chunk=25, mean_norm=True, epoch=4)
    assert any(p.augmented for *_, p in whole) and any(not p.augmented for *_, p in whole)
    for (xw, lw, yw, gw, pw), (x0, l0, y0, g0, p0), (x1, l1, y1, g1, p1) in zip(whole, r0, r1):
        assert p0 == p1 == pw
        assert g0 == g1 == gw == len(yw)
        assert x0.shape[1] == x1.shape[1] == xw.shape[1]  # shards padded like the global batch
        assert torch.equal(xw[0::2], x0) and torch.equal(xw[1::2], x1)
        assert torch.equal(lw[0::2], l0) and torch.equal(yw[1::2], y1)


def test_chunk_then_copypaste_then_mean_norm():
    items, feats = corpus(32)
    seen: list[list[np.ndarray]] = []

    class Spy(CopyPaste):
        def __call__(self, xs, labels):
            seen.append([np.array(x) for x in xs])
            return super().__call__(xs, labels)

    spy = Spy("n-cp", neutral_label=NEUTRAL, p=1.0, piece_length=None, mode="replace", seed=1)
    tb = TrainBatches(items, lambda it: feats[it.utt_id], 32, 15, spy, seed=0)
    x, lengths, y = next(tb.epoch(1))
    # CopyPaste got 15-frame chunks of the raw features (a ramp: not yet normalised)
    assert all(len(c) == 15 and np.all(np.diff(c[:, 0]) == 1) for c in seen[0])
    # ... and its outputs (two chunks each) were mean-normalised as a whole afterwards
    assert lengths.tolist() == [30] * 32
    assert torch.allclose(x.mean(dim=1), torch.zeros(32, 3), atol=1e-4)
    plan = spy.last_plan
    for i, entry in enumerate(plan.entries):
        src = [np.array(seen[0][s]) for s in entry.sources]
        raw = np.concatenate(src)
        assert np.allclose(x[i].numpy(), raw - raw.mean(0), atol=1e-3)


def test_piece_length_is_its_own_option():
    cfg = TrainConfig(chunk_seconds=2.0)
    assert cfg.chunk_frames == 200 and cfg.piece_frames == 400  # paper: 4 s pieces, 10 ms shift
    assert TrainConfig(copypaste_piece_seconds=1.5).piece_frames == 150
    assert TrainConfig(copypaste_piece_seconds=0).piece_frames is None  # whole chunks
    assert make_config("tiny", data="d", copypaste_piece_seconds=1.0).copypaste_piece_seconds == 1.0
    # a piece shorter than the chunk: concatenations are two pieces, not two chunks
    cp = CopyPaste("n-cp", neutral_label=NEUTRAL, p=1.0, piece_length=8, seed=0)
    out = batches(1, 0, cp, chunk=15)
    assert set(out[0][1].tolist()) == {16}


def test_old_run_config_without_piece_field_loads():
    old = TrainConfig().to_dict()
    del old["copypaste_piece_seconds"]
    assert normalized(old)["copypaste_piece_seconds"] == 4.0


def test_negative_piece_is_refused_before_anything_runs():
    from copypaste_ser.errors import UserError
    with pytest.raises(UserError, match="--piece-seconds: must be a number >= 0"):
        make_config("tiny", data="d", copypaste_piece_seconds=-1.0)
