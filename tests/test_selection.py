"""Which weights a run keeps: best dev epoch, or the average of the last epochs."""

from __future__ import annotations

import torch

from copypaste_ser.training.weight_selection import ModelSelection, WeightAverage, average_start


def _model(value: float) -> torch.nn.Module:
    m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(value)
        m[1].running_mean.fill_(value)
        m[1].num_batches_tracked.fill_(int(value))
    return m


def test_average_start_covers_the_last_fraction():
    assert average_start(20, 0.5) == 11 and average_start(20, 1.0) == 1 and average_start(3, 0.1) == 3


def test_weight_average_is_the_mean_and_keeps_integer_buffers_last():
    avg = WeightAverage()
    for v in (1.0, 2.0, 6.0):
        avg.update(_model(v))
    state = avg.averaged_state()
    assert torch.allclose(state["0.weight"], torch.full((2, 2), 3.0))
    assert torch.allclose(state["1.running_mean"], torch.full((2,), 3.0))
    assert int(state["1.num_batches_tracked"]) == 6
    restored = WeightAverage()
    restored.load_state_dict(avg.state_dict())
    restored.update(_model(7.0))
    assert torch.allclose(restored.averaged_state()["0.weight"], torch.full((2, 2), 4.0))


def test_average_selection_keeps_the_mean_of_the_last_epochs_only_at_the_end():
    sel = ModelSelection("average", epochs=4, average_fraction=0.5)
    rescored = []
    choices = [sel.after_epoch(e, 0.1 * e, _model(float(e)), -1.0, lambda w: rescored.append(w) or 0.77)
               for e in (1, 2, 3, 4)]
    assert choices[:3] == [None, None, None]
    score, epoch, weights = choices[3]
    assert (score, epoch) == (0.77, 4) and len(rescored) == 1
    assert torch.allclose(weights["0.weight"], torch.full((2, 2), 3.5))  # epochs 3 and 4


def test_best_dev_selection_keeps_each_improvement():
    sel = ModelSelection("best-dev", epochs=3)
    assert sel.after_epoch(1, 0.5, _model(1.0), -1.0, None) == (0.5, 1, None)
    assert sel.after_epoch(2, 0.4, _model(2.0), 0.5, None) is None
    assert sel.after_epoch(3, 0.6, _model(3.0), 0.5, None) == (0.6, 3, None)
