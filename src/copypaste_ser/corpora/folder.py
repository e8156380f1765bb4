"""Generic import of any labelled corpus: a CSV list, or one folder per label.

With ``csv``: a CSV with header ``path,label,speaker[,split]``. ``path`` is absolute or
relative to the CSV's folder (a ``csv`` given as a relative path that does not exist is
looked up inside ``root``; ``root`` is otherwise unused). ``split`` values: train, dev
(also valid, validation, development), test.

Without ``csv``: a folder-per-label tree ``<root>/<label>/**/*.wav|*.flac``. The speaker is
the file stem's prefix before the first ``_`` or ``-`` (``spk1_0003.wav`` and
``spk1-a.wav`` are speaker ``spk1``; a stem without either is its own speaker).

Labels are normalised to the toolkit's lowercase English names (anger -> angry, happiness
-> happy, fearful -> fear, ...; see ``LABEL_SYNONYMS``); a label that is not one of them is an
error, unless ``labels=[...]`` declares the label set, in which case every label must be in it
(after the same normalisation). The manifest's neutral label is ``neutral`` when that label
occurs, else None.

Protocol: with a split column, one fold ``csv`` taken from it. Otherwise one
speaker-independent fold ``default``: speakers sorted and permuted by
``numpy.random.default_rng(0)``; round(15 %) test, round(15 %) dev, the rest (about 70 %)
train, at least one speaker in each (so at least 3 speakers are needed).

Utterance ids are the audio path relative to the CSV's (or root) folder, without suffix, with
``/`` replaced by ``__``; the file stem for paths outside that folder.
"""

from __future__ import annotations

import csv as csv_module
from pathlib import Path

from ..errors import UserError
from ..manifest import Fold, Manifest, Protocol
from . import (CANONICAL_LABELS, LABEL_SYNONYMS, audio_files, check_unique_ids, drop_empty, finish,
               make_utterance, ordered_labels, require_dir, resolve_audio, shuffled_split,
               speaker_folds)

SPLIT_NAMES = {"train": "train", "training": "train", "dev": "dev", "valid": "dev",
               "validation": "dev", "development": "dev", "val": "dev", "test": "test"}
SEED = 0


def normalise_label(label: str, declared: list[str] | None) -> str | None:
    """Canonical name for ``label`` or None when it is not acceptable."""
    raw = label.strip().lower()
    name = LABEL_SYNONYMS.get(raw, raw)
    if declared is not None:
        return name if name in declared else None
    return name if name in CANONICAL_LABELS else None


def speaker_of(stem: str) -> str:
    cut = [i for i in (stem.find("_"), stem.find("-")) if i > 0]
    return stem[:min(cut)] if cut else stem


def utt_id(audio: Path, base: Path) -> str:
    try:
        rel = audio.resolve().relative_to(base.resolve())
    except ValueError:
        return audio.stem
    return "__".join(rel.with_suffix("").parts)


def _declared(labels: list[str] | None) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = [x for x in labels.split(",") if x.strip()]
    return [LABEL_SYNONYMS.get(x.strip().lower(), x.strip().lower()) for x in labels]


def read_csv(csv_path: Path, declared: list[str] | None):
    base = csv_path.parent
    utts, splits = [], {}
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv_module.DictReader(f)
        fields = [c.strip().lower() for c in (reader.fieldnames or [])]
        for col in ("path", "label", "speaker"):
            if col not in fields:
                raise UserError(f"{csv_path}: missing column {col!r} (header must be "
                                f"path,label,speaker[,split])")
        reader.fieldnames = fields
        has_split = "split" in fields
        for lineno, row in enumerate(reader, 2):
            row = {k: (v or "").strip() for k, v in row.items() if k is not None}
            if not any(row.values()):
                continue
            if not row["path"]:
                raise UserError(f"{csv_path}:{lineno}: empty path")
            label = normalise_label(row["label"], declared)
            if label is None:
                known = declared if declared is not None else list(CANONICAL_LABELS)
                raise UserError(f"{csv_path}:{lineno}: unknown label {row['label']!r} "
                                f"(known: {', '.join(known)}; or pass labels=...)")
            if not row["speaker"]:
                raise UserError(f"{csv_path}:{lineno}: empty speaker")
            p = Path(row["path"]).expanduser()
            p = p if p.is_absolute() else base / p
            audio = resolve_audio(p)
            if audio is None:
                raise UserError(f"{p}: audio listed in {csv_path}:{lineno} is missing")
            u = make_utterance(utt_id(p, base), audio, row["speaker"], label)
            if has_split:
                split = SPLIT_NAMES.get(row.get("split", "").lower())
                if split is None:
                    raise UserError(f"{csv_path}:{lineno}: unknown split {row.get('split')!r} "
                                    f"(expected train, dev or test)")
                splits[u.id] = split
            utts.append(u)
    return utts, (splits if has_split else None)


def read_tree(root: Path, declared: list[str] | None):
    utts = []
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    for d in subdirs:
        files = audio_files(d)
        if not files:
            continue
        label = normalise_label(d.name, declared)
        if label is None:
            known = declared if declared is not None else list(CANONICAL_LABELS)
            raise UserError(f"{d}: folder name is not a known label (known: {', '.join(known)}; "
                            f"or pass labels=...)")
        for path in files:
            utts.append(make_utterance(utt_id(path, root), path, speaker_of(path.stem), label))
    return utts


def prepare(root: Path, csv: Path | str | None = None,
            labels: list[str] | None = None) -> tuple[Manifest, Protocol]:
    declared = _declared(labels)
    root = require_dir(root, "corpus")
    if csv is not None:
        csv_path = Path(csv).expanduser()
        if not csv_path.is_absolute() and not csv_path.is_file():
            csv_path = root / csv_path
        if not csv_path.is_file():
            raise UserError(f"{csv_path}: CSV file does not exist")
        source = csv_path.resolve()
        utts, splits = read_csv(source, declared)
        if not utts:
            raise UserError(f"{source}: the CSV lists no utterances")
    else:
        source = root
        utts, splits = read_tree(root, declared), None
        if not utts:
            raise UserError(f"{root}: no labelled audio found (expected <label>/*.wav|*.flac "
                            f"folders, or pass csv=...)")
    check_unique_ids(utts, source)
    utts, n_empty = drop_empty(utts)
    present = {u.emotion for u in utts}
    label_list = ordered_labels(present, declared or CANONICAL_LABELS)
    if declared is not None:
        label_list = list(declared)
    neutral = "neutral" if "neutral" in label_list else None
    name = source.stem if csv is not None else root.name
    manifest = Manifest(name, label_list, utts, neutral)

    if splits is not None:
        parts: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
        for u in manifest:
            parts[splits[u.id]].append(u.id)
        folds = [Fold("csv", parts["train"], parts["dev"], parts["test"])]
        if not folds[0].train or not folds[0].test:
            raise UserError(f"{source}: the split column gives an empty train or test split")
        description = "Fold 'csv' taken from the CSV's split column."
        default = "csv"
    else:
        assign = shuffled_split(manifest.speakers, 0.15, 0.15, seed=SEED, source=source)
        folds = speaker_folds(manifest, {"default": assign})
        n = {s: sum(1 for v in assign.values() if v == s) for s in ("train", "dev", "test")}
        description = (f"Fold 'default': speaker-independent split with {n['train']} train / "
                       f"{n['dev']} dev / {n['test']} test speakers (sorted, permuted by numpy "
                       f"default_rng({SEED})).")
        default = "default"
    if n_empty:
        description += f" {n_empty} zero-length files skipped."
    return finish(manifest, folds, default, description, source)
