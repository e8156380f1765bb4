"""What a grid config (experiments.GridConfig) allows, key by key: checked when it is loaded,
before the grid reads the corpus or writes a run folder; and which folds its ``folds``
patterns select (shared by the grid's runs and its baselines)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

from copypaste_ser.augment.copypaste import SCHEMES
from copypaste_ser.errors import UserError
from copypaste_ser.training.config import PRESETS, TRAIN_RULES, TrainConfig
from copypaste_ser.training.rundir import VALUE_NEUTRAL, config_changes, tested_elsewhere
from copypaste_ser.validation import (
    SEED,
    SNR,
    WORKERS,
    Fields,
    Kind,
    ListOf,
    OneOf,
    Rule,
    check,
    check_fields,
    check_seeds,
)

#: Training data of a grid cell: the clean corpus, or it plus six noisy copies.
TRAINING_DATA = ("clean", "clean+noise")
#: Non-file values of ``init``: a randomly initialised model, or the pretrained Resemblyzer.
NAMED_INITS = ("scratch", "resemblyzer", "resemblyzer-attention", "whisper-attention", "ssl-attention")
#: Keys the grid sets per cell; in ``train:`` they would be silently overridden.
CELL_KEYS = ("data", "fold", "copypaste", "seed", "noise_aug", "noise_root", "init")

#: Fields a finished run may differ in and still count as the grid's (they do not change it).
REUSE_IGNORES = ("threads", *VALUE_NEUTRAL)

GRID_RULES: dict[str, Rule] = {
    "data": Kind(str), "out": Kind(str), "preset": OneOf(tuple(PRESETS)),
    "train": Fields({k: r for k, r in TRAIN_RULES.items() if k not in CELL_KEYS}),
    "copypaste": ListOf(OneOf(SCHEMES)), "training_data": ListOf(OneOf(TRAINING_DATA)),
    "init": ListOf(Kind(str)), "seeds": ListOf(SEED), "folds": ListOf(Kind(str)),
    "snrs": ListOf(SNR, empty_ok=True), "noise_root": Kind(str, optional=True), "workers": WORKERS,
    "baseline": Kind(bool),
}


def validate_grid(raw: dict[str, Any], path: Path) -> None:
    """One line naming ``file:key`` and what it allows, for the first bad value in ``raw``."""
    check_fields(raw, GRID_RULES, f"{path}:")


def check_slices(workers: int | None, seeds: list[int] | None) -> None:
    """The grid command's own options (the other slices are checked against the config)."""
    if workers is not None:
        check("--workers", workers, WORKERS)
    check_seeds(seeds or [])


def check_reuse(runs: Mapping[Hashable, tuple[Path, TrainConfig]], force: bool) -> set[Hashable]:
    """The grid cells (keys of ``runs``: cell -> (run folder, the grid's config of it)) whose
    folder holds a run of another config (e.g. ``epochs`` or ``preset`` changed since):
    refused in one line naming the first, unless ``force``, which has them trained again.
    A finished run is never reused silently."""
    stale = set()
    for cell, (run, cfg) in runs.items():
        changes = config_changes(run, cfg, REUSE_IGNORES)
        if changes and not force:
            raise UserError(f"grid: {run} was trained with another config ({'; '.join(changes)}); "
                            f"pass --force to train such runs again, or restore the grid's settings")
        if not changes and tested_elsewhere(run, cfg):
            if not force:
                raise UserError(f"grid: {run} was tested on other utterances than fold {cfg.fold} of {cfg.data} "
                                f"holds now (the corpus was prepared again, with another fold assignment); pass "
                                f"--force to train such runs again, or give the grid a new out:")
            changes = ["test_set"]
        if changes:
            stale.add(cell)
    return stale
