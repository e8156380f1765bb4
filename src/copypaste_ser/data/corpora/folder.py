"""Generic import of any labelled corpus: a CSV list, or one folder per label.

``HELP`` (``copypaste-ser prepare folder --help``) is the user's description of the format,
split values and fold options; keep it and the README section "Your own corpus" in step.

With ``csv``: a CSV with header ``path,label,speaker`` and optionally ``split`` and fold
columns. ``path`` is absolute or relative to the CSV's folder (``root`` is not needed; a
relative ``csv`` that does not exist is looked up inside ``root``).

Without ``csv``: a folder-per-label tree ``<root>/<label>/**/*.wav|*.flac``. The speaker is
the file stem's prefix before the first ``_`` or ``-`` (``spk1_0003.wav`` and
``spk1-a.wav`` are speaker ``spk1``; a stem without either is its own speaker).

Labels: ``label_map`` ({"a": "angry"} or "a=angry,n=neutral") renames raw labels first;
then labels are normalised to the toolkit's lowercase English names (anger -> angry,
fearful -> fear, ...; see ``LABEL_SYNONYMS``); a label that is not one of them is an error,
unless ``labels=[...]`` declares the label set. The neutral label is ``neutral`` when present.

Utterance ids are the audio path relative to the CSV's (or root) folder, without suffix, with
``/`` replaced by ``__``; the file stem for paths outside that folder.
"""

from __future__ import annotations

import csv as csv_module
import io
from collections.abc import Mapping
from pathlib import Path

from copypaste_ser.data.corpora.common import (
    CANONICAL_LABELS,
    LABEL_SYNONYMS,
    audio_files,
    check_unique_ids,
    drop_empty,
    finish,
    make_utterance,
    ordered_labels,
    require_dir,
    resolve_audio,
    shuffled_split,
)
from copypaste_ser.data.corpora.folds import check_folds, cv_folds, parse_folds, speaker_classes, warn
from copypaste_ser.data.manifest import TRAIN_ONLY_FOLD, Fold, Manifest, Protocol
from copypaste_ser.errors import UserError
from copypaste_ser.files.textio import read_text

SPLIT_NAMES = {"train": "train", "training": "train", "dev": "dev", "valid": "dev",
               "validation": "dev", "development": "dev", "val": "dev", "test": "test"}
SEED = 0
FOLD_PREFIXES = ("fold-", "fold_", "fold:")  # columns "fold-<name>": a fold given row by row

HELP = """\
Import your own corpus: a CSV list, or one folder per label.

  copypaste-ser prepare folder --csv LIST.csv --out data/mine [--label-map a=angry,n=neutral]
                               [--folds loso|K]
  copypaste-ser prepare folder --root TREE --out data/mine     (TREE/<label>/**/*.wav|*.flac)

CSV header: path,label,speaker[,split][,fold][,fold-NAME...]
  path      audio file (.wav/.flac), absolute or relative to the CSV's folder (no --root needed)
  label     emotion; our names (neutral, angry, happy, sad, fear, disgust, boredom, calm, surprise,
            contempt) and common spellings (anger, happiness, fearful, ...) are recognised;
            any other label needs --label-map RAW=NAME,... (e.g. a=angry,n=neutral,w=angry)
  speaker   speaker id; folds never share a speaker between train, dev and test
  split     optional: train | dev (also valid, validation, development, val) | test.
            Gives one fold 'csv'. Every fold needs dev rows and every class in train.
  fold      optional: a group per row; fold 'fold-<g>' tests group g, develops on the next
            group (sorted, cyclically) and trains on the rest (k-fold with your own groups)
  fold-NAME optional, repeatable: train | dev | test (or empty: unused) per row; one fold NAME each

Folds without split/fold columns:
  (default)   one fold 'default': speakers sorted and permuted by numpy default_rng(0);
              round(15 %) of them test, round(15 %) dev, the rest train (at least one each,
              so 3+ speakers). If a split then lacks a class, the next seeds (1, 2, ...) are
              tried and the first split giving every split every class is kept.
  --folds loso  one fold 'loso-<speaker>' per speaker: test that speaker, dev the next
              speaker (sorted, cyclically) holding every class, train the rest
  --folds none  no folds: training material for `copypaste-ser combine` only (any number of speakers)
  --folds K   K speaker-independent folds 'kfold-1'..'kfold-K': speakers dealt into K groups
              holding every class where the speakers allow; test group i, dev group i+1
  Each speaker is tested in exactly one fold: `train --fold all` trains them all and
  `report` pools their test predictions.

Refused at prepare (one line): a fold without dev data; a class missing from a fold's train.
Warned: a dev or test split missing a class (named in the warning).
"""


def parse_label_map(label_map: str | Mapping[str, str] | None, source: str = "--label-map") -> dict[str, str]:
    """{raw label (lowercase): target} from "a=angry,n=neutral" or a mapping."""
    if label_map is None:
        return {}
    if isinstance(label_map, str):
        pairs = []
        for entry in (e.strip() for e in label_map.split(",")):
            if not entry:
                continue
            raw, sep, name = entry.partition("=")
            if not sep or not raw.strip() or not name.strip():
                raise UserError(f"{source}: {entry!r} is not RAW=NAME (write e.g. a=angry,n=neutral)")
            pairs.append((raw, name))
    else:
        pairs = list(label_map.items())
    out: dict[str, str] = {}
    for raw, name in pairs:
        key, target = str(raw).strip().lower(), str(name).strip().lower()
        if key in out and out[key] != target:  # the last one silently winning would mislabel data
            raise UserError(f"{source}: {raw!r} is mapped twice ({out[key]!r} and {target!r}); keep one")
        out[key] = target
    return out


def normalise_label(label: str, declared: list[str] | None, label_map: dict[str, str] | None = None) -> str | None:
    """Canonical name for ``label`` (renamed by ``label_map`` first) or None when not acceptable."""
    raw = label.strip().lower()
    raw = (label_map or {}).get(raw, raw)
    name = LABEL_SYNONYMS.get(raw, raw)
    if declared is not None:
        return name if name in declared else None
    return name if name in CANONICAL_LABELS else None


def _unknown_label(where: str, label: str, declared: list[str] | None, what: str = "") -> UserError:
    known = declared if declared is not None else list(CANONICAL_LABELS)
    what = what or f"unknown label {label!r}"
    return UserError(f"{where}: {what} (known: {', '.join(known)}); map it with "
                     f"--label-map {label.strip().lower() or 'RAW'}=NAME (Python: label_map=...)")


def speaker_of(stem: str) -> str:
    cut = [i for i in (stem.find("_"), stem.find("-")) if i > 0]
    return stem[:min(cut)] if cut else stem


def utt_id(audio: Path, base: Path) -> str:
    try:
        rel = audio.resolve().relative_to(base.resolve())
    except ValueError:
        return audio.stem
    return "__".join(rel.with_suffix("").parts)


def _declared(labels: list[str] | str | None) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = [x for x in labels.split(",") if x.strip()]
    return [LABEL_SYNONYMS.get(x.strip().lower(), x.strip().lower()) for x in labels]


def _split(value: str, where: str, empty_ok: bool = False) -> str | None:
    if empty_ok and not value:
        return None
    split = SPLIT_NAMES.get(value.lower())
    if split is None:
        raise UserError(f"{where}: unknown split {value!r} (expected train, dev or test)")
    return split


def read_csv(csv_path: Path, declared: list[str] | None, label_map: dict[str, str] | None = None):
    """(utterances, {column: {utt id: value}}) for the split/fold columns present."""
    base = csv_path.parent
    utts, columns = [], {}
    with io.StringIO(read_text(csv_path), newline="") as f:
        reader = csv_module.DictReader(f)
        fields = [c.strip().lower() for c in (reader.fieldnames or [])]
        for col in ("path", "label", "speaker"):
            if col not in fields and len(fields) == 1 and (sep := _other_separator(fields[0])):
                raise UserError(f"{csv_path}: the header {fields[0]!r} is separated by {sep}, not by commas; "
                                f"save the list as comma-separated values (path,label,speaker)")
            if col not in fields:
                raise UserError(f"{csv_path}: missing column {col!r} (header must be "
                                f"path,label,speaker[,split][,fold]; see prepare folder --help)")
        reader.fieldnames = fields
        fold_cols = [c for c in fields if c == "split" or c == "fold" or c.startswith(FOLD_PREFIXES)]
        columns = {c: {} for c in fold_cols}
        for lineno, row in enumerate(reader, 2):
            row = {k: (v or "").strip() for k, v in row.items() if k is not None}
            if not any(row.values()):
                continue
            where = f"{csv_path}:{lineno}"
            if not row["path"]:
                raise UserError(f"{where}: empty path")
            label = normalise_label(row["label"], declared, label_map)
            if label is None:
                raise _unknown_label(where, row["label"], declared)
            if not row["speaker"]:
                raise UserError(f"{where}: empty speaker")
            p = Path(row["path"]).expanduser()
            p = p if p.is_absolute() else base / p
            audio = resolve_audio(p)
            if audio is None:
                raise UserError(f"{p}: audio listed in {where} is missing")
            u = make_utterance(utt_id(p, base), audio, row["speaker"], label)
            for c in fold_cols:
                value = row.get(c, "")
                if c == "fold":
                    if not value:
                        raise UserError(f"{where}: empty fold (give every row a fold group)")
                    columns[c][u.id] = value
                else:
                    columns[c][u.id] = _split(value, where, empty_ok=c != "split")
            utts.append(u)
    return utts, columns


def _other_separator(header: str) -> str | None:
    """The separator of a one-column header that is really several columns (Excel's ';', tabs)."""
    for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
        if sep in header and "path" in header.split(sep):
            return name
    return None


def read_tree(root: Path, declared: list[str] | None, label_map: dict[str, str] | None = None):
    utts = []
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    for d in subdirs:
        files = audio_files(d)
        if not files:
            continue
        label = normalise_label(d.name, declared, label_map)
        if label is None:
            raise _unknown_label(str(d), d.name, declared, "folder name is not a known label")
        for path in files:
            utts.append(make_utterance(utt_id(path, root), path, speaker_of(path.stem), label))
    return utts


def column_folds(manifest: Manifest, columns: dict[str, dict[str, str]]) -> list[Fold]:
    """Folds from a CSV's split, fold and fold-NAME columns (in that order)."""
    folds = []
    if "split" in columns:
        folds.append(_fold("csv", manifest, columns["split"]))
    if "fold" in columns:
        groups = sorted(set(columns["fold"].values()))
        for i, g in enumerate(groups):
            dev = groups[(i + 1) % len(groups)] if len(groups) > 1 else None
            assign = {u: "test" if v == g else "dev" if v == dev else "train" for u, v in columns["fold"].items()}
            folds.append(_fold(f"fold-{g}", manifest, assign))
    for c, assign in columns.items():
        if c.startswith(FOLD_PREFIXES):
            folds.append(_fold(c[len("fold-"):], manifest, assign))
    return folds


def _fold(name: str, manifest: Manifest, assign: dict[str, str | None]) -> Fold:
    parts: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for u in manifest:
        if assign.get(u.id):
            parts[assign[u.id]].append(u.id)
    return Fold(name, parts["train"], parts["dev"], parts["test"])


def stratified_split(manifest: Manifest, source: Path, tries: int = 200) -> tuple[dict[str, str], int]:
    """``shuffled_split`` with seed SEED, or the first next seed whose train, dev and test
    all hold every class (else the one missing fewest): (speaker -> split, seed used)."""
    held = speaker_classes(manifest)
    best, best_seed, best_missing = {}, SEED, None
    for seed in range(SEED, SEED + tries):
        assign = shuffled_split(manifest.speakers, 0.15, 0.15, seed=seed, source=source)
        missing = sum(len(set(manifest.labels).difference(*[held[p] for p, v in assign.items() if v == split]))
                      for split in ("train", "dev", "test"))
        if best_missing is None or missing < best_missing:
            best, best_seed, best_missing = assign, seed, missing
        if missing == 0:
            break
    return best, best_seed


def prepare(root: Path | None = None, csv: Path | str | None = None, labels: list[str] | None = None,
            label_map: str | Mapping[str, str] | None = None,
            folds: str | int | None = None) -> tuple[Manifest, Protocol]:
    """Manifest and protocol of a CSV list or a folder-per-label tree (see ``HELP``)."""
    declared = _declared(labels)
    mapping = _checked_label_map(label_map, declared)
    scheme = parse_folds(folds)
    source, utts, columns = _read_listing(root, csv, declared, mapping)
    check_unique_ids(utts, source)
    utts, n_empty = drop_empty(utts)
    label_list = list(declared) if declared is not None else ordered_labels({u.emotion for u in utts})
    neutral = "neutral" if "neutral" in label_list else None
    name = source.stem if csv is not None else source.name
    manifest = Manifest(name, label_list, utts, neutral)
    if columns and scheme is not None:
        raise UserError(f"{source}: has {', '.join(columns)} column(s) and --folds {scheme} was given; "
                        f"use one of them")
    fold_list, description, notes = _folds(manifest, columns, scheme, source)
    for f in fold_list:
        if f.name != TRAIN_ONLY_FOLD and (not f.train or not f.test):
            raise UserError(f"{source}: fold {f.name!r} has an empty train or test split")
    if n_empty:
        description += f" {n_empty} zero-length or silent files skipped."
    manifest, protocol = finish(manifest, fold_list, fold_list[0].name if fold_list else "default",
                                description, source)
    gaps = check_folds(manifest, protocol, str(source))
    warn(gaps, str(source))
    if gaps:
        protocol.description += " Warnings: " + "; ".join(gaps) + "."
    if notes:
        protocol.description += " " + " ".join(notes) + "."
    return manifest, protocol


def _checked_label_map(label_map: str | Mapping[str, str] | None, declared: list[str] | None) -> dict:
    source_of_map = "label_map" if not isinstance(label_map, str) else "--label-map"
    mapping = parse_label_map(label_map, source_of_map)
    for raw, target in mapping.items():  # a typo in a target would otherwise blame the raw label
        if normalise_label(target, declared) is None:
            known = declared if declared is not None else CANONICAL_LABELS
            raise UserError(f"{source_of_map}: {raw}={target}: {target!r} is not a known label (known: "
                            f"{', '.join(known)}); map {raw!r} to one of them")
    return mapping


def _read_listing(root: Path | None, csv: Path | str | None, declared: list[str] | None,
                  mapping: dict) -> tuple[Path, list, list[str]]:
    """(source path, utterances, fold columns) of the CSV list, or of the label-folder tree."""
    if csv is not None:
        csv_path = Path(csv).expanduser()
        if not csv_path.is_absolute() and not csv_path.is_file() and root is not None:
            csv_path = Path(root).expanduser() / csv_path
        if csv_path.is_dir():
            raise UserError(f"--csv: {csv_path}: is a folder, not a CSV file; give the CSV list "
                            f"(or the folder as --root: TREE/<label>/*.wav)")
        if not csv_path.is_file():
            raise UserError(f"{csv_path}: CSV file does not exist")
        source = csv_path.resolve()
        utts, columns = read_csv(source, declared, mapping)
        if not utts:
            raise UserError(f"{source}: the CSV lists no utterances")
        return source, utts, columns
    if root is None:
        raise UserError("corpus 'folder' needs --csv LIST.csv or --root FOLDER (see prepare folder --help)")
    source = require_dir(root, "labelled")
    utts = read_tree(source, declared, mapping)
    if not utts:
        raise UserError(f"{source}: no labelled audio found (expected <label>/*.wav|*.flac "
                        f"folders, or pass --csv)")
    return source, utts, []


def _folds(manifest: Manifest, columns: list[str], scheme, source: Path) -> tuple[list, str, list[str]]:
    """The folds (from the CSV's columns, none, k-fold CV, or the default split), their
    description and any note on the split's seed."""
    if columns:
        return column_folds(manifest, columns), f"Folds from the CSV's {', '.join(columns)} column(s).", []
    if scheme == "none":
        return ([Fold(TRAIN_ONLY_FOLD, [u.id for u in manifest], [], [])],
                f"No folds: every utterance is training material for `copypaste-ser combine` "
                f"(fold {TRAIN_ONLY_FOLD!r}); this corpus is never tested on its own.", [])
    if scheme is not None:
        fold_list, description = cv_folds(manifest, scheme, str(source))
        return fold_list, description, []
    assign, seed = stratified_split(manifest, source)
    fold_list = [_fold("default", manifest, {u.id: assign[u.speaker] for u in manifest})]
    n = {s: sum(1 for v in assign.values() if v == s) for s in ("train", "dev", "test")}
    description = (f"Fold 'default': speaker-independent split with {n['train']} train / "
                   f"{n['dev']} dev / {n['test']} test speakers (sorted, permuted by numpy "
                   f"default_rng({seed})).")
    notes = ([f"seed {SEED} left a split without some class; seed {seed} is the first that does better"]
             if seed != SEED else [])
    return fold_list, description, notes
