"""Which weights a run keeps: the best dev epoch (the paper) or an average of the last epochs.

The paper keeps the epoch with the best dev weighted F1. With one or two dev speakers
(20-40 utterances, as in EmoDB or RAVDESS folds) that choice follows noise: dev F1 jumps by
tens of points between neighbouring epochs. ``select="average"`` instead trains a fixed
number of epochs and keeps the running mean of the weights over the last
``average_fraction`` of them (stochastic weight averaging with a constant learning rate):
no dev-based choice at all, and a flatter, better-generalising solution. Normalisation
buffers (BatchNorm running statistics) are averaged like the weights; integer buffers
(batch counters) keep the last epoch's value. Evidence for the choice: docs/results/README.md.

``select="best-dev-smoothed"`` keeps the paper's dev choice but makes it on the dev curve
smoothed by a centred moving average over ``smooth_epochs`` epochs (shorter at the ends), so
one lucky epoch of a small dev set does not win: the weights of the epoch at the middle of
the best window are kept (:class:`SmoothedChoice` holds the last few epochs' weights).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import torch

SELECTIONS = ("best-dev", "average", "best-dev-smoothed")
#: select="best-dev-smoothed": the epoch whose centred moving average of dev scores is best.
SMOOTHED = "best-dev-smoothed"


def average_start(epochs: int, fraction: float) -> int:
    """First epoch (1-based) that enters the average of the last ``fraction`` of ``epochs``."""
    return max(1, epochs - max(1, round(epochs * fraction)) + 1)


class WeightAverage:
    """Running mean of a model's floating-point state over the epochs it is updated with."""

    def __init__(self) -> None:
        self.count = 0
        self.state: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.count += 1
        for key, value in model.state_dict().items():
            value = value.detach().cpu()
            if key not in self.state or not value.is_floating_point():
                self.state[key] = value.clone()
            else:
                self.state[key] += (value - self.state[key]) / self.count

    def averaged_state(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.state.items()}

    def state_dict(self) -> dict:
        return {"count": self.count, "state": self.state}

    def load_state_dict(self, saved: dict) -> None:
        self.count = int(saved["count"])
        self.state = {k: v.clone() for k, v in saved["state"].items()}


class SmoothedChoice:
    """Feeds the epochs' dev scores and weights; yields each epoch's centred moving average
    once the epochs after it are known (all remaining ones at the last epoch)."""

    def __init__(self, window: int) -> None:
        self.half = max(0, window // 2)
        self.scores: list[float] = []  # every epoch's dev score, from epoch 1
        self.recent: deque = deque()   # (epoch, weights) of the epochs not yet yielded

    def add(self, epoch: int, score: float, model: torch.nn.Module,
            last: bool) -> list[tuple[int, float, dict[str, torch.Tensor]]]:
        self.scores.append(float(score))
        self.recent.append((epoch, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}))
        ready = []
        while self.recent and (last or self.recent[0][0] + self.half <= epoch):
            e, weights = self.recent.popleft()
            window = self.scores[max(0, e - 1 - self.half): e + self.half]
            ready.append((e, sum(window) / len(window), weights))
        return ready

    def state_dict(self) -> dict:
        return {"scores": list(self.scores), "recent": list(self.recent)}

    def load_state_dict(self, saved: dict) -> None:
        self.scores = list(saved["scores"])
        self.recent = deque(saved["recent"])


class ModelSelection:
    """Which weights a run keeps, decided after every epoch (``select``: see SELECTIONS).

    :meth:`after_epoch` returns ``(score, epoch, weights)`` when the kept model changes
    (``weights`` None: the model's current weights), else None; ``rescore(weights)`` gives
    the dev score of other weights (the average). Its state goes into the resume checkpoint.
    """

    def __init__(self, select: str, epochs: int, average_fraction: float = 0.5, smooth_epochs: int = 5) -> None:
        self.select, self.epochs = select, epochs
        self.start = average_start(epochs, average_fraction)
        self.averager = WeightAverage()
        self.smoother = SmoothedChoice(smooth_epochs)

    def after_epoch(self, epoch: int, score: float, model: torch.nn.Module, best: float,
                    rescore: Callable[[dict], float]) -> tuple[float, int, dict | None] | None:
        last = epoch == self.epochs
        if self.select == SMOOTHED:
            choice = None
            for e, smooth, weights in self.smoother.add(epoch, score, model, last):
                if smooth > best:
                    best, choice = smooth, (smooth, e, weights)
            return choice
        if self.select == "average":
            if epoch >= self.start:
                self.averager.update(model)
            if not last:
                return None
            weights = self.averager.averaged_state()
            return rescore(weights), epoch, weights
        return (score, epoch, None) if score > best else None

    def state_dict(self) -> dict:
        return {"average": self.averager.state_dict(), "smoothed": self.smoother.state_dict()}

    def load_state_dict(self, saved: dict) -> None:
        self.averager.load_state_dict(saved["average"])
        self.smoother.load_state_dict(saved["smoothed"])
