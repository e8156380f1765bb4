"""CREMA-D: 91 actors (1001-1091), 12 sentences, 6 emotions, acted.

Layout: ``<root>/AudioWAV/AAAA_SSS_EEE_LL.wav`` as in the GitHub/LFS repository (.wav or
.flac; when ``AudioWAV/`` is absent, files are searched anywhere below ``<root>``). Fields:
AAAA actor id, SSS sentence code (IEO, TIE, ... see ``SENTENCES``), EEE emotion (ANG, DIS,
FEA, HAP, NEU, SAD), LL level (LO, MD, HI, XX unspecified). ``<root>/VideoDemographics.csv``
(columns ActorID, Age, Sex, Race, Ethnicity) is optional; when present, ``extra`` gets gender,
age, race and ethnicity.

Options: ``classes="paper4"`` (default: angry, happy, neutral, sad, as in the paper) or
``"all"`` (the 6 emotions).

Speaker ids are ``crema-AAAA``. Header-only files (the distribution's 1076_MTI_SAD_XX.wav is
one) are skipped and counted in the protocol description.

Protocol: one fold ``default`` with the paper's split sizes, 32 test / 8 dev / 51 train
actors. The paper's actual actor lists (from its reference [14]) are not published, so the
split here is ours and deterministic: sort the actor ids numerically, permute them with
``numpy.random.default_rng(0).permutation``, the first 32 are test, the next 8 dev, the other
51 train. With fewer actors (a partial copy or a test fixture) the sizes are scaled
proportionally (round(n*32/91) test, round(n*8/91) dev), with at least one actor in each
split (so at least 3 actors are needed).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from copypaste_ser.data.corpora.common import (
    PAPER4,
    audio_files,
    check_unique_ids,
    class_set,
    drop_empty,
    finish,
    make_utterance,
    refuse_empty_classes,
    require_dir,
    shuffled_split,
    speaker_folds,
)
from copypaste_ser.data.manifest import Manifest, Protocol
from copypaste_ser.errors import UserError

NAME_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral",
            "SAD": "sad"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
SENTENCES = {
    "IEO": "It's eleven o'clock.",
    "TIE": "That is exactly what happened.",
    "IOM": "I'm on my way to the meeting.",
    "IWW": "I wonder what this is about.",
    "TAI": "The airplane is almost full.",
    "MTI": "Maybe tomorrow it will be cold.",
    "IWL": "I would like a new alarm clock.",
    "ITH": "I think I have a doctor's appointment.",
    "DFA": "Don't forget a jacket.",
    "ITS": "I think I've seen this before.",
    "TSI": "The surface is slick.",
    "WSI": "We'll stop in a couple of minutes.",
}
CLASS_SETS = {"paper4": PAPER4,
              "all": ["neutral", "angry", "happy", "sad", "fear", "disgust"]}
N_ACTORS, N_TEST, N_DEV = 91, 32, 8
SEED = 0


def speaker_id(actor: str) -> str:
    return f"crema-{actor}"


def split_actors(actors: list[str], seed: int = SEED, source: Path | str = "CREMA-D") -> dict[str, str]:
    """Actor id -> 'train'/'dev'/'test' as documented in the module docstring (4-digit ids, so
    sorting the strings sorts the numbers)."""
    return shuffled_split(list(actors), N_TEST / N_ACTORS, N_DEV / N_ACTORS, seed=seed,
                          what="actors", source=source)


def read_demographics(root: Path) -> dict[str, dict[str, str]]:
    path = root / "VideoDemographics.csv"
    if not path.is_file():
        found = sorted(root.rglob("VideoDemographics.csv"))
        if not found:
            return {}
        path = found[0]
    out = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "ActorID" not in reader.fieldnames:
            raise UserError(f"{path}: no ActorID column (expected ActorID,Age,Sex,Race,Ethnicity)")
        for row in reader:
            actor = (row.get("ActorID") or "").strip()
            if not actor:
                continue
            info = {}
            sex = (row.get("Sex") or "").strip().lower()
            if sex:
                info["gender"] = sex
            for col in ("Age", "Race", "Ethnicity"):
                val = (row.get(col) or "").strip()
                if val:
                    info[col.lower()] = val
            out[actor] = info
    return out


def prepare(root: Path, classes: str = "paper4") -> tuple[Manifest, Protocol]:
    labels = class_set("CREMA-D", CLASS_SETS, classes)
    root = require_dir(root, "CREMA-D")
    folder = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
    files = audio_files(folder)
    if not files:
        raise UserError(f"{root}: no CREMA-D files (AudioWAV/*.wav|*.flac named like "
                        f"1001_DFA_ANG_XX) found")
    demographics = read_demographics(root)
    utts = []
    all_actors: set[str] = set()
    n_dropped = 0
    for path in files:
        m = NAME_RE.match(path.stem)
        if not m:
            hint = "" if folder != root else f"; {root} has no AudioWAV/ folder: is --root the CREMA-D folder?"
            raise UserError(f"{path}: not a CREMA-D file name (expected AAAA_SSS_EEE_LL like "
                            f"1001_DFA_ANG_XX){hint}")
        actor, sentence, emo, level = m.groups()
        if emo not in EMOTIONS or level not in LEVELS:
            raise UserError(f"{path}: CREMA-D file name has unknown emotion {emo!r} or level "
                            f"{level!r} (emotions {', '.join(EMOTIONS)}; levels {', '.join(LEVELS)})")
        emotion = EMOTIONS[emo]
        all_actors.add(actor)
        if emotion not in labels:
            n_dropped += 1
            continue
        extra = {"sentence": sentence, "level": LEVELS[level]}
        if sentence in SENTENCES:
            extra["text"] = SENTENCES[sentence]
        extra.update(demographics.get(actor, {}))
        utts.append(make_utterance(path.stem, path, speaker_id(actor), emotion, extra))
    check_unique_ids(utts, root)
    utts, n_empty = drop_empty(utts)
    manifest = Manifest("crema-d", list(labels), utts, "neutral")

    # split over every actor found, so classes="paper4" and "all" share the actor split
    split = split_actors(sorted(all_actors), source=root)
    counts = {s: sum(1 for v in split.values() if v == s) for s in ("train", "dev", "test")}
    assignments = {"default": {speaker_id(a): s for a, s in split.items()}}
    description = (f"CREMA-D: fold 'default' is an actor-independent split with "
                   f"{counts['train']} train / {counts['dev']} dev / {counts['test']} test actors "
                   f"(actor ids sorted, permuted by numpy default_rng({SEED}); first test, then dev, "
                   f"rest train).")
    if classes != "all":
        description += f" classes={classes}: {n_dropped} utterances of other emotions dropped."
    if n_empty:
        description += f" {n_empty} zero-length or silent files skipped."
    refuse_empty_classes(manifest, root)  # a partial copy read with the wrong --classes
    return finish(manifest, speaker_folds(manifest, assignments), "default", description, root)
