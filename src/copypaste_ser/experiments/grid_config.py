"""What a grid is: its config (the YAML of grid.py), its cells and each cell's training config.

Read by the grid that runs the cells (grid.py), by ``--done`` (grid_done.py), ``--status``
(grid_status.py) and ``choose``, none of which trains anything.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from copypaste_ser.augment.reencode import join_suffix
from copypaste_ser.data.manifest import expand_folds, load_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.experiments.grid_rules import NAMED_INITS, validate_grid
from copypaste_ser.features.speaker_norm import norm_suffix
from copypaste_ser.files.textio import load_yaml
from copypaste_ser.training.config import TrainConfig, check_applicable, make_config
from copypaste_ser.training.rundir import grid_run_dir


@dataclass
class GridConfig:
    data: str
    out: str
    preset: str = "cpu"
    train: dict = field(default_factory=dict)
    copypaste: list[str] = field(default_factory=lambda: ["none", "se-cp", "n-cp", "n+se-cp"])
    training_data: list[str] = field(default_factory=lambda: ["clean", "clean+noise"])
    init: list[str] = field(default_factory=lambda: ["scratch"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    folds: list[str] = field(default_factory=lambda: ["default"])
    snrs: list[float] = field(default_factory=lambda: [10, 0])
    noise_root: str | None = None
    workers: int = 1
    baseline: bool = False           # eGeMAPS + SVM in the same folds

    @property
    def whole(self) -> GridConfig:
        """The grid a slice was cut from (itself when not a slice): results.csv and grid.yaml
        describe it, so slices run one after the other add up instead of replacing each other."""
        return getattr(self, "_whole", None) or self

    def restricted(self, workers: int | None = None, **subsets) -> GridConfig:
        """A copy running a slice of the grid (same run folders, so slices add up)."""
        changes: dict = {"workers": workers} if workers else {}
        for key, values in subsets.items():
            if values:
                resolved = [str(Path(v).resolve()) if key == "init" and v not in NAMED_INITS
                            else v for v in values]
                unknown = [v for v in resolved if not _in_config(key, v, getattr(self, key))]
                if unknown:
                    raise UserError(f"grid: {key} {unknown[0]!r} is not in the config ({getattr(self, key)})")
                changes[key] = resolved
        part = dataclasses.replace(self, **changes)
        part._whole = self.whole
        return part

    @classmethod
    def load(cls, path: str | Path) -> GridConfig:
        path = Path(path)
        raw = load_yaml(path) or {}
        if not isinstance(raw, dict):
            raise UserError(f"{path}: not a grid config (expected a mapping of options such as data: and out:)")
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(raw) - known)
        if bad:
            raise UserError(f"{path}: unknown grid option {bad[0]!r} (known: {', '.join(sorted(known))})")
        for key in ("data", "out"):
            if key not in raw:
                raise UserError(f"{path}: missing {key!r}")
        validate_grid(raw, path)  # every value's type, range and allowed set, before any path is used
        base = path.parent
        for key in ("data", "out", "noise_root"):  # relative paths are relative to the config file
            if raw.get(key) is not None and not Path(raw[key]).is_absolute():
                raw[key] = str((base / raw[key]).resolve())
        raw["init"] = [i if i in NAMED_INITS or Path(i).is_absolute() else str((base / i).resolve())
                       for i in raw.get("init", ["scratch"])]
        grid = cls(**raw)
        if "clean+noise" in grid.training_data or grid.snrs:
            if not grid.noise_root:
                raise UserError(f"{path}: clean+noise training and noisy tests need noise_root")
        return grid


def _in_config(key: str, value, configured: list) -> bool:
    """A slice value is one of the config's; a fold may also match one of its patterns."""
    if key == "folds":
        return value in configured or "all" in configured or any(fnmatch.fnmatch(value, p) for p in configured)
    return value in configured


@dataclass(frozen=True)
class Cell:
    fold: str
    init: str
    training_data: str
    copypaste: str
    seed: int
    speaker_norm: str = "none"
    copypaste_join: str = "exact"

    @property
    def init_name(self) -> str:
        """The init's name in run folders and results (a speaker-normalised model, and one trained
        with approximate CopyPaste joins, is named so)."""
        if self.init in NAMED_INITS:
            name = self.init
        else:
            path = Path(self.init)  # runs/speaker-cpu/model.pt -> speaker-cpu
            name = path.parent.name if path.stem == "model" else path.stem
        return name + norm_suffix(self.speaker_norm) + join_suffix(self.copypaste, self.copypaste_join)

    def path(self, out: Path) -> Path:
        return grid_run_dir(out, self.fold, self.init_name, self.training_data, self.copypaste, self.seed)


SLICE_KEYS = ("folds", "init", "training_data", "copypaste", "seeds")


def cells(grid: GridConfig) -> list[Cell]:
    _, protocol = load_corpus(Path(grid.data))
    folds = expand_folds(grid.folds, protocol.names, protocol.default)
    norm, join = grid.train.get("speaker_norm", "none"), grid.train.get("copypaste_join", "exact")
    return [Cell(*c, speaker_norm=norm, copypaste_join=join)
            for c in itertools.product(folds, grid.init, grid.training_data, grid.copypaste, grid.seeds)]


def cell_config(grid: GridConfig, cell: Cell) -> TrainConfig:
    init = None if cell.init == "scratch" else cell.init
    cfg = make_config(grid.preset, **{**grid.train, "data": grid.data, "fold": cell.fold,
                                      "copypaste": cell.copypaste, "seed": cell.seed,
                                      # a No CP cell joins nothing: the same run as an exact grid's
                                      "copypaste_join": "exact" if cell.copypaste == "none" else cell.copypaste_join,
                                      "noise_aug": cell.training_data == "clean+noise",
                                      "noise_root": grid.noise_root, "init": init})
    check_applicable(cfg)
    return cfg
