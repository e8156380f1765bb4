"""Runs compared in one fold must test the same utterances.

A fold is known by its name only (``kfold-1``), so runs made on two data folders prepared with
different fold assignments share fold names but not test speakers; pairing them over folds
compares different test sets without a word. Each run's predictions name its test utterances,
so a report checks them before it compares anything.
"""

from __future__ import annotations

from collections.abc import Mapping

from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.pooled import RUN_KEY

_FOLD, _TEST = RUN_KEY.index("fold"), RUN_KEY.index("test")


def same_utterances(a: set[str], b: set[str]) -> bool:
    """Equal, or equal up to the corpus prefix `combine` gives each id (``emodb-03a01Fa`` is
    EmoDB's ``03a01Fa`` in a combined corpus)."""
    if a == b:
        return True
    if len(a) != len(b) or not a:
        return False
    for longer, shorter in ((a, b), (b, a)):
        first, other = min(longer), min(shorter)  # a prefix common to all keeps the sort order
        prefix = first[: len(first) - len(other)]
        if prefix.endswith("-") and first.endswith(other) and {prefix + i for i in shorter} == longer:
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
                f"to folds differently; run (or score) both on one prepared folder before comparing them")
