"""Training configuration and presets (``paper`` for a GPU, ``cpu`` for 2 cores, ``tiny`` for tests)."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from .errors import UserError
from .features import FeatureConfig, resemblyzer_features

#: TrainConfig.init value that selects the pretrained Resemblyzer speaker encoder.
RESEMBLYZER = "resemblyzer"


@dataclass
class TrainConfig:
    data: str = ""                   # prepared corpus directory
    task: str = "emotion"            # emotion | speaker (speaker-ID pretraining, see speaker.py)
    fold: str | None = None          # protocol fold; None = the corpus default
    preset: str = "cpu"              # model preset (see models.PRESETS)
    width: int | None = None         # override the preset's channel width (stages w, 2w, 4w, 8w)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3                 # Adam, otherwise PyTorch defaults (paper 3.2)
    chunk_seconds: float = 4.0       # random training chunk (paper 3.2.2)
    copypaste: str = "none"          # none | n-cp | se-cp | n+se-cp
    copypaste_p: float = 0.8
    copypaste_mode: str = "replace"  # replace | add
    copypaste_order: str = "random"  # random | emotional-first | partner-first
    noise_aug: bool = False          # Clean+Noise: six noisy copies of the training set
    noise_root: str | None = None    # MUSAN-layout folder for noise_aug and noisy tests
    noise_epoch_fraction: float = 1.0  # share of each noisy copy drawn per epoch
    init: str | None = None          # speaker model file to fine-tune from, or "resemblyzer"
    freeze_encoder: bool = False
    encoder_lr_scale: float = 1.0
    seed: int = 0
    threads: int = 0                 # torch threads; 0 = torch's default
    features: dict = field(default_factory=lambda: FeatureConfig().to_dict())

    @property
    def feature_config(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.features)

    @property
    def chunk_frames(self) -> int:
        shift = self.feature_config.frame_shift_ms / 1000.0
        return int(round(self.chunk_seconds / shift))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"{source}: unknown training option {unknown[0]!r} "
                            f"(known: {', '.join(sorted(known))})")
        return cls(**d)


#: Training presets; every key is a TrainConfig field.
PRESETS: dict[str, dict] = {
    "paper": dict(preset="paper", epochs=50, batch_size=128, chunk_seconds=4.0),
    "cpu": dict(preset="cpu", epochs=30, batch_size=64, chunk_seconds=4.0),
    "tiny": dict(preset="tiny", epochs=6, batch_size=32, chunk_seconds=2.0),
}


def make_config(preset: str = "cpu", config_file: str | Path | None = None, **overrides) -> TrainConfig:
    """Preset, then a YAML file, then explicit overrides (None values are ignored).

    ``init="resemblyzer"`` sets the features to Resemblyzer's mel40 power front end
    (``features.resemblyzer_features``) unless features are given explicitly.
    """
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    values = dict(PRESETS[preset])
    if config_file is not None:
        path = Path(config_file)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise UserError(f"{path}: cannot read config ({e})") from None
        if not isinstance(loaded, dict):
            raise UserError(f"{path}: expected a mapping of training options")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("init") == RESEMBLYZER and "features" not in values:
        values["features"] = resemblyzer_features().to_dict()
    return TrainConfig.from_dict(values)


def normalized(d: dict, source: str = "config") -> dict:
    """A stored config dict with the defaults of fields added since filled in (for comparisons)."""
    cfg = TrainConfig.from_dict(dict(d), source)
    cfg.features = FeatureConfig.from_dict(cfg.features).to_dict()
    return cfg.to_dict()
