"""Runs compared in one fold must test the same utterances.

A fold is known by its name only (``kfold-1``), so runs made on two data folders prepared with
different fold assignments share fold names but not test speakers; pairing them over folds
compares different test sets without a word. Each run's predictions name its test utterances,
and its results.csv rows carry a fingerprint of them (``test_set``), so a report checks either
before it compares anything, and a grid does not reuse a run its data folder's fold no longer tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from copypaste_ser.data.manifest import combined_id, own_id
from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.pooled import RUN_KEY

_FOLD, _TEST = RUN_KEY.index("fold"), RUN_KEY.index("test")
FIX = "run (or score) both on one prepared folder before comparing them"


def check_rows_same_tests(rows: Iterable[Mapping], source: Mapping[int, Path] | None = None) -> None:
    """Raise a one-line UserError where two rows of one fold and test carry different ``test_set``
    fingerprints (rows written before the column have none and are passed over); ``source`` maps
    ``id(row)`` to the file it came from."""
    first: dict[tuple[str, str], Mapping] = {}
    for row in rows:
        if not row.get("test_set"):
            continue
        seen = first.setdefault((row["fold"], row["test"]), row)
        if seen["test_set"] != row["test_set"]:
            raise UserError(f"fold {row['fold']}, test {row['test']}: {_named(seen, source)} and "
                            f"{_named(row, source)} tested different utterances (test_set {seen['test_set']} / "
                            f"{row['test_set']}): their data folders assign speakers to folds differently; {FIX}")


def _named(row: Mapping, source: Mapping[int, Path] | None) -> str:
    where = f" ({source[id(row)]})" if source and id(row) in source else ""
    return "/".join(str(row[k]) for k in RUN_KEY) + where


def same_utterances(a: set[str], b: set[str]) -> bool:
    """Equal, or equal once the corpus prefix `combine` gives each id is taken off one of them
    (``emodb-03a01Fa`` is EmoDB's ``03a01Fa`` in a combined corpus: data.manifest.own_id, as the
    ``test_set`` fingerprint sees it). Predictions do not name their corpus, so it is read off the ids."""
    if a == b:
        return True
    if len(a) != len(b) or not a:
        return False
    for longer, shorter in ((a, b), (b, a)):
        first, other = min(longer), min(shorter)  # a prefix common to all keeps the sort order
        corpus = first[: len(first) - len(other)].removesuffix("-")
        prefix = combined_id(corpus, "")
        if corpus and all(i.startswith(prefix) for i in longer) and {own_id(i, corpus) for i in longer} == shorter:
            return True
    return False


def check_same_tests(preds: Mapping[str, Mapping[str, object]], origin: Mapping[str, str] | None = None) -> None:
    """Raise a one-line UserError where two runs of one fold and test condition scored different
    utterances; ``origin`` names the file each run key came from."""
    first: dict[tuple[str, str], tuple[str, set[str]]] = {}
    for key, utterances in preds.items():
        parts = key.split("|")
        group = (parts[_FOLD], parts[_TEST])
        ids = set(utterances)
        if group not in first:
            first[group] = (key, ids)
            continue
        seen_key, seen = first[group]
        if not same_utterances(seen, ids):
            where = {k: f" ({origin[k]})" if origin and k in origin else "" for k in (seen_key, key)}
            raise UserError(
                f"fold {group[0]}, test {group[1]}: {seen_key}{where[seen_key]} tested {len(seen)} utterances, "
                f"{key}{where[key]} {len(ids)} ({len(seen & ids)} shared): their data folders assign speakers "
                f"to folds differently; {FIX}")
