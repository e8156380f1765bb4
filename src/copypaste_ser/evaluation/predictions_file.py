"""``predictions.json`` beside a results.csv: each run's true and predicted label per test utterance.

In memory: ``{run key: {utterance id: (true, predicted)}}`` (run key: results.csv's RUN_KEY
joined by "|"). On disk, compactly (:data:`FORMAT`): the utterance ids once, sorted, the label
names once, each id's true label once, and per run the predicted labels as one character each
over the span of ids the run scored (``"."`` where it scored none). A grid's runs share their
test utterances, so the plain mapping repeated every id and true label once per run: the
leave-one-corpus-out report was 5.4 MB. Files in the plain mapping (written before) still load.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping, Sequence
from pathlib import Path

from copypaste_ser.errors import UserError
from copypaste_ser.files.atomic import atomic_write_text

FORMAT = "copypaste-ser/predictions/2"
CODES = string.digits + string.ascii_letters  # one character per label; more labels: the plain mapping
MISSING = "."

Predictions = Mapping[str, Mapping[str, Sequence[str]]]


def dumps(preds: Predictions) -> str:
    """The compact text of ``preds``; the plain mapping where it cannot be compact (more than 62
    labels, or one utterance with two true labels)."""
    truth: dict[str, str] = {}
    for run in preds.values():
        for uid, (true, _) in run.items():
            if truth.setdefault(uid, true) != true:
                return json.dumps(preds)
    labels = sorted({lab for run in preds.values() for pair in run.values() for lab in pair})
    if len(labels) > len(CODES):
        return json.dumps(preds)
    code = {lab: CODES[i] for i, lab in enumerate(labels)}
    ids = sorted(truth)
    where = {uid: i for i, uid in enumerate(ids)}
    runs = {}
    for key, run in preds.items():
        places = sorted(where[uid] for uid in run)
        start = places[0] if places else 0
        chars = [MISSING] * ((places[-1] - start + 1) if places else 0)
        for uid, (_, pred) in run.items():
            chars[where[uid] - start] = code[pred]
        runs[key] = [start, "".join(chars)]
    return json.dumps({"format": FORMAT, "labels": labels, "ids": ids,
                       "true": "".join(code[truth[uid]] for uid in ids), "runs": runs})


def loads(text: str, source: str = "predictions.json") -> dict[str, dict[str, tuple[str, str]]]:
    """``{run key: {utterance id: (true, predicted)}}`` from either form."""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and data.get("format") == FORMAT:
            return _from_compact(data)
        return {key: {uid: (pair[0], pair[1]) for uid, pair in run.items()} for key, run in data.items()}
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise UserError(f"{source}: not a predictions file of copypaste-ser; rebuild it with "
                        f"copypaste-ser report (or remove it)") from None


def _from_compact(data: dict) -> dict[str, dict[str, tuple[str, str]]]:
    labels, ids, truth = data["labels"], data["ids"], data["true"]
    out = {}
    for key, (start, codes) in data["runs"].items():
        out[key] = {ids[start + k]: (labels[CODES.index(truth[start + k])], labels[CODES.index(c)])
                    for k, c in enumerate(codes) if c != MISSING}
    return out


def read_predictions(path: str | Path) -> dict[str, dict[str, tuple[str, str]]]:
    path = Path(path)
    return loads(path.read_text(), str(path))


def write_predictions(path: str | Path, preds: Predictions) -> None:
    """Write ``preds`` to ``path`` atomically (the compact form)."""
    atomic_write_text(Path(path), dumps(preds))
