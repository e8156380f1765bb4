"""EmoDB (Berlin Database of Emotional Speech): 10 actors, 10 German sentences, 7 emotions.

Layout: ``<root>/wav/SSTTTEV.wav`` as distributed (``<root>`` may also be the wav folder
itself, or any folder holding the files below it; .wav or .flac). File name fields: SS
speaker (03 08 09 10 11 12 13 14 15 16), TTT text (a01 .. b10), E emotion letter (W anger,
L boredom, E disgust, A fear, F happiness, T sadness, N neutral), V version letter.

Labels: neutral, angry, happy, sad, fear, disgust, boredom. Speaker ids are ``emodb-SS``;
``extra`` holds gender, text_id, text and version.

Options: ``classes="all"`` (7 labels, 535 utterances) or ``"paper4"`` (angry, happy,
neutral, sad as in the paper: 339 utterances; the rest dropped and counted).

Protocol (speaker-independent throughout):

* ``default``: test = speakers 03 (m) + 08 (f), dev = 09 (f) + 10 (m), train = the other six
  (11 m, 12 m, 13 f, 14 f, 15 m, 16 f). Fixed, so results are comparable; each split is
  gender balanced (1 m + 1 f in test and dev, 3 m + 3 f in train).
* ``loso-emodb-SS`` for every speaker: test = SS, dev = the next speaker id in sorted
  order (cyclically, so 16 -> 03), train = the other eight.
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
    loso_assignments,
    make_utterance,
    refuse_empty_classes,
    require_dir,
    speaker_folds,
)
from copypaste_ser.data.manifest import Manifest, Protocol
from copypaste_ser.errors import UserError

NAME_RE = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])([a-z])$")
EMOTIONS = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy",
            "T": "sad", "N": "neutral"}
LABELS = ["neutral", "angry", "happy", "sad", "fear", "disgust", "boredom"]
CLASS_SETS = {"all": LABELS, "paper4": PAPER4}
GENDER = {"03": "male", "08": "female", "09": "female", "10": "male", "11": "male",
          "12": "male", "13": "female", "14": "female", "15": "male", "16": "female"}
TEXTS = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
DEFAULT_SPLIT = {"03": "test", "08": "test", "09": "dev", "10": "dev"}


def speaker_id(ss: str) -> str:
    return f"emodb-{ss}"


def prepare(root: Path, classes: str = "all") -> tuple[Manifest, Protocol]:
    labels = class_set("EmoDB", CLASS_SETS, classes)
    root = require_dir(root, "EmoDB")
    folder = root / "wav" if (root / "wav").is_dir() else root
    files = audio_files(folder)
    if not files:
        raise UserError(f"{root}: no EmoDB files (*.wav|*.flac named like 03a01Fa) found")
    utts = []
    n_dropped = 0
    for path in files:
        m = NAME_RE.match(path.stem)
        if not m:
            raise UserError(f"{path}: not an EmoDB file name (expected SSTTTEV like 03a01Fa)")
        ss, text_id, emo, version = m.groups()
        if EMOTIONS[emo] not in labels:
            n_dropped += 1
            continue
        extra = {"text_id": text_id, "version": version}
        if ss in GENDER:
            extra["gender"] = GENDER[ss]
        if text_id in TEXTS:
            extra["text"] = TEXTS[text_id]
        utts.append(make_utterance(path.stem, path, speaker_id(ss), EMOTIONS[emo], extra))
    check_unique_ids(utts, root)
    utts, n_empty = drop_empty(utts)
    manifest = Manifest("emodb", list(labels), utts, "neutral")

    speakers = manifest.speakers
    assignments = {"default": {s: DEFAULT_SPLIT.get(s.removeprefix("emodb-"), "train")
                               for s in speakers}}
    assignments.update(loso_assignments(speakers))
    description = ("EmoDB: fold 'default' tests on speakers 03+08, develops on 09+10, trains on "
                   "the other six; 'loso-emodb-SS' leaves speaker SS out for test with the next "
                   "speaker id as dev.")
    if n_dropped:
        description += f" classes={classes}: {n_dropped} utterances of other emotions dropped."
    if n_empty:
        description += f" {n_empty} zero-length or silent files skipped."
    refuse_empty_classes(manifest, root)  # a partial copy read with the wrong --classes
    return finish(manifest, speaker_folds(manifest, assignments), "default", description, root)
