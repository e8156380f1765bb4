"""RAVDESS, speech part: 24 actors (odd ids male, even female), 2 statements, 8 emotions.

Layout: ``<root>/Actor_NN/MM-VV-EE-II-SS-RR-AA.wav`` as in ``Audio_Speech_Actors_01-24.zip``
(.wav or .flac; files are found anywhere below ``<root>``). Fields: MM modality, VV vocal
channel (01 speech, 02 song: song files are skipped and counted), EE emotion (01 neutral,
02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised), II intensity
(01 normal, 02 strong; neutral has only normal), SS statement (01 "Kids are talking by the
door", 02 "Dogs are sitting by the door"), RR repetition, AA actor.

Options: ``classes="all"`` (8 labels) or ``"paper4"`` (angry, happy, neutral, sad; the rest
dropped). The full speech set gives 1440 utterances; paper4 keeps 672 (neutral 96, the
others 192 each).

Speaker ids are ``ravdess-AA``; ``extra`` holds gender, intensity, statement, text and
repetition.

Protocol (actor independent):

* ``default``: test = actors 21-24, dev = 17-20, train = 1-16 (each split half male, half
  female because odd ids are male).
* ``cv-K``, K = 1..6: actors grouped in fours (1-4, 5-8, ..., 21-24); test = group K,
  dev = group K+1 (cyclically), train = the other four groups.
"""

from __future__ import annotations

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
    speaker_folds,
)
from copypaste_ser.data.manifest import Manifest, Protocol
from copypaste_ser.errors import UserError

NAME_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
            "06": "fear", "07": "disgust", "08": "surprise"}
LABELS = ["neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"]
INTENSITY = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
CLASS_SETS = {"all": LABELS, "paper4": PAPER4}


def speaker_id(actor: int) -> str:
    return f"ravdess-{actor:02d}"


def prepare(root: Path, classes: str = "all") -> tuple[Manifest, Protocol]:
    labels = class_set("RAVDESS", CLASS_SETS, classes)
    root = require_dir(root, "RAVDESS")
    files = audio_files(root)
    if not files:
        raise UserError(f"{root}: no RAVDESS files (*.wav|*.flac named like 03-01-05-01-01-01-01) found")
    utts = []
    n_song = n_dropped = 0
    for path in files:
        m = NAME_RE.match(path.stem)
        if not m:
            raise UserError(f"{path}: not a RAVDESS file name (expected MM-VV-EE-II-SS-RR-AA "
                            f"like 03-01-05-01-01-01-01)")
        _mod, channel, emo, intensity, statement, rep, actor = m.groups()
        if channel == "02":
            n_song += 1
            continue
        if channel != "01" or emo not in EMOTIONS or intensity not in INTENSITY \
                or statement not in STATEMENTS or int(actor) < 1:
            raise UserError(f"{path}: RAVDESS file name has an out-of-range field "
                            f"(vocal channel 01/02, emotion 01-08, intensity 01-02, statement 01-02)")
        emotion = EMOTIONS[emo]
        if emotion not in labels:
            n_dropped += 1
            continue
        a = int(actor)
        extra = {"gender": "male" if a % 2 else "female", "intensity": INTENSITY[intensity],
                 "statement": statement, "text": STATEMENTS[statement], "repetition": rep}
        utts.append(make_utterance(path.stem, path, speaker_id(a), emotion, extra))
    if not utts:
        raise UserError(f"{root}: no RAVDESS speech files with classes {classes!r} found")
    check_unique_ids(utts, root)
    utts, n_empty = drop_empty(utts)
    manifest = Manifest("ravdess", list(labels), utts, "neutral")

    speakers = manifest.speakers
    actor_of = {s: int(s.removeprefix("ravdess-")) for s in speakers}
    assignments = {"default": {s: "test" if a >= 21 else "dev" if a >= 17 else "train"
                               for s, a in actor_of.items()}}
    for k in range(6):
        cv = {}
        for s, a in actor_of.items():
            group = (a - 1) // 4 % 6
            cv[s] = "test" if group == k else "dev" if group == (k + 1) % 6 else "train"
        assignments[f"cv-{k + 1}"] = cv
    description = ("RAVDESS speech: fold 'default' tests on actors 21-24, develops on 17-20, "
                   "trains on 1-16; 'cv-K' (K=1..6) tests on actors 4K-3..4K, develops on the "
                   "next group of four, trains on the rest.")
    if classes != "all":
        description += f" classes={classes}: {n_dropped} utterances of other emotions dropped."
    if n_song:
        description += f" {n_song} song files skipped."
    if n_empty:
        description += f" {n_empty} zero-length or silent files skipped."
    refuse_empty_classes(manifest, root)  # a partial copy read with the wrong --classes
    return finish(manifest, speaker_folds(manifest, assignments), "default", description, root)
