"""MSP-Podcast, Release 1.4: natural podcast speech, crowd-sourced consensus labels.

Layout::

    <root>/Labels/labels_concensus.csv   (sic, as released; labels_consensus.csv also accepted,
                                          and either name directly in <root>)
    <root>/Audios/<FileName>             (MSP-PODCAST_0001_0008.wav; Audio/ also accepted,
                                          and .flac in place of .wav)

The CSV has a header with at least FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID,
Gender, Split_Set. EmoClass: A angry, H happy, S sad, N neutral, D disgust, C contempt,
U surprise, F fear, O other, X no agreement. Split_Set: Train, Development, Test1, Test2.

Options: ``classes="paper5"`` (default: angry, happy, sad, neutral, disgust, as in the paper;
other classes dropped) or ``"all"`` (adds contempt, surprise, fear; O and X are always
dropped). ``test_set="Test1"`` (default) or ``"Test2"``.

The manifest holds every kept utterance of all four split sets (``extra["split_set"]`` says
which). Speaker ids are ``msp-<SpkrID>``; ``extra`` holds gender, arousal, valence, dominance.
Many utterances have SpkrID ``Unknown``: those get one pseudo-speaker per split set
(``msp-unknown-train``, ``msp-unknown-development``, ``msp-unknown-test1``, ...), so they never
count as one speaker shared across splits (the release's split is speaker independent for
known speakers; for unknown ones nothing can be checked).

Protocol: one fold ``standard``: Train -> train, Development -> dev, ``test_set`` -> test
(the other test set is left out of the fold).
"""

from __future__ import annotations

import csv
from pathlib import Path

from copypaste_ser.data.corpora.common import (
    check_unique_ids,
    class_set,
    drop_empty,
    finish,
    make_utterance,
    require_dir,
    resolve_audio,
)
from copypaste_ser.data.manifest import Fold, Manifest, Protocol
from copypaste_ser.errors import UserError

CLASSES = {"A": "angry", "H": "happy", "S": "sad", "N": "neutral", "D": "disgust",
           "C": "contempt", "U": "surprise", "F": "fear"}
ALWAYS_DROPPED = {"O", "X"}
CLASS_SETS = {"paper5": ["neutral", "angry", "happy", "sad", "disgust"],
              "all": ["neutral", "angry", "happy", "sad", "disgust", "contempt", "surprise", "fear"]}
SPLIT_SETS = {"Train": "train", "Development": "dev", "Test1": "test1", "Test2": "test2"}
REQUIRED = ("FileName", "EmoClass", "SpkrID", "Split_Set")
LABEL_NAMES = ("labels_concensus.csv", "labels_consensus.csv")


def find_labels(root: Path) -> Path | None:
    for folder in (root / "Labels", root):
        for name in LABEL_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def _utterance(row: dict[str, str], where: str, audio_dir: Path, labels: list[str]):
    """The utterance of one label-file row; None for a class left out of ``labels``."""
    name, emo, split_set = row["FileName"], row["EmoClass"], row["Split_Set"]
    if split_set not in SPLIT_SETS:
        raise UserError(f"{where}: unknown Split_Set {split_set!r} for {name} (expected {', '.join(SPLIT_SETS)})")
    if emo not in CLASSES and emo not in ALWAYS_DROPPED:
        raise UserError(f"{where}: unknown EmoClass {emo!r} for {name} "
                        f"(expected one of {', '.join([*CLASSES, *ALWAYS_DROPPED])})")
    emotion = CLASSES.get(emo)
    if emotion not in labels:
        return None
    audio = resolve_audio(audio_dir / name)
    if audio is None:
        raise UserError(f"{audio_dir / name}: audio listed in {where} is missing")
    spk = row["SpkrID"]
    speaker = f"msp-unknown-{split_set.lower()}" if spk.lower() in ("", "unknown") else f"msp-{spk}"
    extra = {"split_set": split_set}
    for col, key in (("Gender", "gender"), ("EmoAct", "arousal"), ("EmoVal", "valence"), ("EmoDom", "dominance")):
        if row.get(col):
            extra[key] = row[col].lower() if key == "gender" else row[col]
    return make_utterance(Path(name).stem, audio, speaker, emotion, extra)


def prepare(root: Path, classes: str = "paper5", test_set: str = "Test1") -> tuple[Manifest, Protocol]:
    labels = class_set("MSP-Podcast", CLASS_SETS, classes)
    if test_set not in ("Test1", "Test2"):
        raise UserError(f"MSP-Podcast option test_set={test_set!r}: choose Test1 or Test2")
    root = require_dir(root, "MSP-Podcast")
    label_file = find_labels(root)
    if label_file is None:
        raise UserError(f"{root}: no MSP-Podcast files (Labels/labels_concensus.csv) found")
    audio_dir = next((d for d in (root / "Audios", root / "Audio") if d.is_dir()), root / "Audios")

    utts = []
    n_dropped = 0
    with open(label_file, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in fields]
        if missing:
            raise UserError(f"{label_file}: missing column {missing[0]!r} "
                            f"(expected {', '.join(REQUIRED)}, EmoAct, EmoVal, EmoDom, Gender)")
        reader.fieldnames = fields
        for lineno, row in enumerate(reader, 2):
            row = {k: (v or "").strip() for k, v in row.items() if k is not None}
            if not row["FileName"]:
                continue
            utt = _utterance(row, f"{label_file}:{lineno}", audio_dir, labels)
            if utt is None:
                n_dropped += 1
            else:
                utts.append(utt)
    if not utts:
        raise UserError(f"{label_file}: no utterances with classes {classes!r}")
    check_unique_ids(utts, label_file)
    utts, n_empty = drop_empty(utts)
    manifest = Manifest("msp-podcast", list(labels), utts, "neutral")

    role = {"Train": "train", "Development": "dev", test_set: "test"}
    parts: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for u in manifest:
        r = role.get(u.extra["split_set"])
        if r:
            parts[r].append(u.id)
    folds = [Fold("standard", parts["train"], parts["dev"], parts["test"])]
    if not folds[0].train or not folds[0].test:
        raise UserError(f"{label_file}: the standard split needs Train and {test_set} utterances "
                        f"({len(parts['train'])} train, {len(parts['test'])} {test_set} found)")
    description = (f"MSP-Podcast 1.4: fold 'standard' uses the release's split: Train -> train, "
                   f"Development -> dev, {test_set} -> test. Speaker 'Unknown' is one pseudo-speaker "
                   f"per split set. {n_dropped} utterances of other classes dropped (classes={classes}).")
    if n_empty:
        description += f" {n_empty} zero-length or silent files skipped."
    return finish(manifest, folds, "standard", description, label_file)
