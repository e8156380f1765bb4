"""Manifests and split protocols: what a corpus recipe emits and every later stage reads.

A corpus directory made by ``prepare`` holds ``manifest.jsonl`` (one utterance a line),
``corpus.json`` (name, label set, neutral label) and ``protocol.json`` (named folds,
each a train/dev/test partition of utterance ids). Its files are written atomically (atomic.py).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from copypaste_ser.errors import UserError
from copypaste_ser.files.atomic import atomic_write_text
from copypaste_ser.validation import Check, Fields, Kind, ListOf, Number, check_fields, check_name

SPLITS = ("train", "dev", "test")
#: The single fold of a speaker corpus (LibriSpeech, VoxCeleb): every utterance in train,
#: dev and test empty. Speaker-ID pretraining (speaker.py) holds out utterances of the SAME
#: speakers itself, so this fold is exempt from the speaker-disjointness rule.
SPEAKER_FOLD = "speaker-id"
#: The one fold of a corpus prepared with ``--folds none``: every utterance is training material
#: for ``combine`` (data/combine.py); the corpus is never tested on its own.
TRAIN_ONLY_FOLD = "train-only"
#: The one label of a speaker corpus (its utterances carry no emotion).
NO_EMOTION = "unknown"


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: str
    speaker: str
    emotion: str
    duration: float
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


@dataclass
class Manifest:
    """Utterances of one corpus plus its label set. ``neutral`` is None for corpora without one."""

    name: str
    labels: list[str]
    utterances: list[Utterance]
    neutral: str | None = "neutral"

    def __post_init__(self) -> None:
        self._by_id = {u.id: u for u in self.utterances}

    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self) -> Iterator[Utterance]:
        return iter(self.utterances)

    def __getitem__(self, utt_id: str) -> Utterance:
        return self._by_id[utt_id]

    @property
    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.utterances})

    def label_index(self, emotion: str) -> int:
        return self.labels.index(emotion)

    def subset(self, ids: Iterable[str]) -> list[Utterance]:
        return [self._by_id[i] for i in ids]

    def summary(self) -> str:
        counts = {lab: 0 for lab in self.labels}
        for u in self.utterances:
            counts[u.emotion] += 1
        hours = sum(u.duration for u in self.utterances) / 3600
        per_label = ", ".join(f"{k} {v}" for k, v in counts.items())
        return (f"{self.name}: {len(self)} utterances, {len(self.speakers)} speakers, "
                f"{len(self.labels)} emotions ({per_label}), {hours:.2f} h")


@dataclass
class Fold:
    name: str
    train: list[str]
    dev: list[str]
    test: list[str]

    def split(self, which: str) -> list[str]:
        if which not in SPLITS:
            raise UserError(f"unknown split {which!r}: choose one of {', '.join(SPLITS)}")
        return getattr(self, which)


@dataclass
class Protocol:
    """Named folds; ``default`` names the fold used when none is asked for."""

    folds: list[Fold]
    default: str
    description: str = ""

    def fold(self, name: str | None = None) -> Fold:
        name = name or self.default
        for f in self.folds:
            if f.name == name:
                return f
        raise UserError(f"no fold {name!r} in protocol: choose one of {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.folds]


def folds_by_speaker(manifest: Manifest, assignments: dict[str, dict[str, str]]) -> list[Fold]:
    """Build folds from per-fold maps speaker -> split ('train'/'dev'/'test'; others dropped)."""
    folds = []
    for name, spk_split in assignments.items():
        parts: dict[str, list[str]] = {s: [] for s in SPLITS}
        for u in manifest:
            split = spk_split.get(u.speaker)
            if split in parts:
                parts[split].append(u.id)
        folds.append(Fold(name, parts["train"], parts["dev"], parts["test"]))
    return folds


def speaker_protocol(manifest: Manifest, description: str) -> Protocol:
    """The protocol of a speaker corpus: one fold :data:`SPEAKER_FOLD` training on everything."""
    return Protocol([Fold(SPEAKER_FOLD, [u.id for u in manifest], [], [])], SPEAKER_FOLD, description)


# ---------------------------------------------------------------- validation
def validate(manifest: Manifest, protocol: Protocol | None = None, check_files: bool = True,
             source: str = "manifest") -> None:
    """Raise UserError, one line naming the culprit, on the first problem found."""
    seen: set[str] = set()
    labels = set(manifest.labels)
    if manifest.neutral is not None and manifest.neutral not in labels:
        raise UserError(f"{source}: neutral label {manifest.neutral!r} is not among the labels {manifest.labels}")
    # names from data become file and folder names (runs, folds, plots): each must be one safe
    # path component, checked here so prepare refuses them and a hand-edited copy never loads
    for label in manifest.labels:
        check_name(label, "label", source)
    speakers: set[str] = set()
    for u in manifest:
        if u.id in seen:
            raise UserError(f"{source}: duplicate utterance id {u.id!r}")
        seen.add(u.id)
        check_name(u.id, "utterance id", source)
        if u.speaker not in speakers:
            check_name(u.speaker, f"speaker of utterance {u.id!r}", source)
            speakers.add(u.speaker)
        if u.emotion not in labels:
            raise UserError(f"{source}: utterance {u.id!r} has unknown label {u.emotion!r} "
                            f"(known: {', '.join(manifest.labels)})")
        if check_files and not os.path.isfile(u.audio):
            raise UserError(f"{u.audio}: audio file of utterance {u.id!r} is missing")
    if protocol is None:
        return
    for fold in protocol.folds:
        check_name(fold.name, "fold name", source)
        speakers_in: dict[str, set[str]] = {}
        for split in SPLITS:
            ids = fold.split(split)
            unknown = [i for i in ids if i not in manifest._by_id]
            if unknown:
                raise UserError(f"{source}: fold {fold.name!r} {split} names unknown utterance {unknown[0]!r}")
            speakers_in[split] = {manifest[i].speaker for i in ids}
        if fold.name in (SPEAKER_FOLD, TRAIN_ONLY_FOLD):
            if not fold.train or fold.dev or fold.test:
                raise UserError(f"{source}: fold {fold.name!r} must hold every utterance in train "
                                f"and nothing in dev or test")
            continue
        if not fold.train or not fold.test:
            raise UserError(f"{source}: fold {fold.name!r} has an empty train or test split")
        for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
            both = speakers_in[a] & speakers_in[b]
            if both:
                raise UserError(f"{source}: speaker {sorted(both)[0]!r} is in both {a} and {b} "
                                f"of fold {fold.name!r}")
    protocol.fold(protocol.default)


# ---------------------------------------------------------------- storage
#: The files of a prepared corpus folder.
CORPUS_FILES = ("manifest.jsonl", "corpus.json", "protocol.json")


def save_corpus(out_dir: Path, manifest: Manifest, protocol: Protocol) -> None:
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "manifest.jsonl", "".join(u.to_json() + "\n" for u in manifest))
    meta = {"name": manifest.name, "labels": manifest.labels, "neutral": manifest.neutral}
    atomic_write_text(out_dir / "corpus.json", json.dumps(meta, indent=1))
    proto = {"default": protocol.default, "description": protocol.description,
             "folds": [asdict(f) for f in protocol.folds]}
    atomic_write_text(out_dir / "protocol.json", json.dumps(proto))


def load_corpus(data_dir: Path, check_files: bool = False) -> tuple[Manifest, Protocol]:
    """Read a prepared corpus directory and validate it."""
    data_dir = Path(data_dir)
    for name in ("manifest.jsonl", "corpus.json", "protocol.json"):
        if not (data_dir / name).is_file():
            raise UserError(f"{data_dir / name}: missing; run `copypaste-ser prepare` to create {data_dir}")
    meta = _read_json(data_dir / "corpus.json")
    _check_keys(meta, CORPUS_RULES, data_dir / "corpus.json", required=("name", "labels"))
    utts = []
    path = data_dir / "manifest.jsonl"
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                check_fields(record, UTTERANCE_RULES, f"{path}:{lineno}: ")
                utts.append(Utterance(**record))
            except (json.JSONDecodeError, TypeError, AttributeError) as e:
                raise UserError(f"{path}:{lineno}: not a valid utterance record ({e})") from None
    manifest = Manifest(meta["name"], list(meta["labels"]), utts, meta.get("neutral"))
    proto = _read_json(data_dir / "protocol.json")
    _check_keys(proto, PROTOCOL_RULES, data_dir / "protocol.json", required=("default", "folds"))
    try:
        folds = [Fold(**f) for f in proto["folds"]]
    except TypeError as e:
        raise UserError(f"{data_dir / 'protocol.json'}: not a valid fold ({e})") from None
    protocol = Protocol(folds, proto["default"], proto.get("description", ""))
    validate(manifest, protocol, check_files=check_files, source=str(path))
    return manifest, protocol


# What the files of a prepared corpus hold (a hand-edited or damaged one is a one-line error).
_IDS = ListOf(Kind(str), empty_ok=True, max_items=10_000_000)  # MSP-Podcast alone holds 100,000+
CORPUS_RULES = {"name": Kind(str), "labels": ListOf(Kind(str)), "neutral": Kind(str, optional=True)}
PROTOCOL_RULES = {"default": Kind(str), "description": Check(lambda v: isinstance(v, str), "a text"),
                  "folds": ListOf(Fields({"name": Kind(str), "train": _IDS, "dev": _IDS, "test": _IDS}))}
UTTERANCE_RULES = {"id": Kind(str), "audio": Kind(str), "speaker": Kind(str), "emotion": Kind(str),
                   "duration": Number(ge=0), "extra": Check(lambda v: isinstance(v, dict), "a mapping")}


def _check_keys(d: dict, rules: dict, path: Path, required: tuple[str, ...]) -> None:
    missing = [k for k in required if k not in d]
    if missing:
        raise UserError(f"{path}: {missing[0]!r} is missing; run `copypaste-ser prepare` again")
    check_fields(d, rules, f"{path}:")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object, not {type(data).__name__}")
    return data


def expand_folds(patterns: list[str], names: list[str], default: str) -> list[str]:
    """The fold names a grid's ``folds`` select, in order, each once: a name, ``all``,
    ``default`` (the protocol's) or a shell pattern such as ``loso-*``."""
    out: list[str] = []
    for p in patterns:
        if p == "all":
            hits = names
        elif p == "default":
            hits = [default]
        else:
            hits = [n for n in names if fnmatch.fnmatch(n, p)]
        if not hits:
            raise UserError(f"grid: fold {p!r} matches none of {', '.join(names)}")
        out += [h for h in hits if h not in out]
    return out


def combined_id(corpus: str, own_id: str) -> str:
    """An utterance's id in a combined corpus (`combine`): its corpus's name, a dash, its own id."""
    return f"{corpus}-{own_id}"


def own_id(utterance_id: str, corpus: str | None) -> str:
    """The id ``corpus`` gives an utterance that a combined corpus calls ``utterance_id``
    (unchanged where it does not carry that corpus's prefix): :func:`combined_id` undone."""
    prefix = combined_id(corpus, "") if corpus else None
    return utterance_id[len(prefix):] if prefix and utterance_id.startswith(prefix) else utterance_id


def fold_test_fingerprint(manifest: Manifest, ids: Iterable[str]) -> str:
    """12 hex digits naming a set of test utterances by their own corpus's ids (a combined
    corpus's fold of EmoDB has EmoDB's fingerprint): results.csv's ``test_set``."""
    own = [own_id(i, manifest[i].extra.get("corpus")) for i in ids]
    return hashlib.sha1("\n".join(sorted(own)).encode()).hexdigest()[:12]
