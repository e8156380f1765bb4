"""Speaker-independent folds for any corpus, stratified by class where the speakers allow.

``--folds loso``: one fold ``loso-<speaker>`` per speaker: test = that speaker, dev = the
next speaker in sorted order (cyclically) that holds every class, train = the rest.
``--folds K``: speakers dealt into K groups so that each group holds as many classes as
possible and about the same number of utterances of each class (stratified group k-fold, a
seeded search: :func:`kfold_groups`); fold ``kfold-i`` tests group i, develops on group i+1
(cyclically) and trains on the rest, as RAVDESS's ``cv-K``.

Every test utterance of a corpus is in exactly one fold's test split, so scores can be
pooled over the folds (pooling.py). :func:`check_folds` refuses what ``train`` cannot use
(no dev data, a class absent from train) and :func:`missing_classes` names what a split lacks.
"""

from __future__ import annotations

import sys
import warnings
from collections import defaultdict

import numpy as np

from copypaste_ser.data.manifest import TRAIN_ONLY_FOLD, Fold, Manifest, Protocol, folds_by_speaker
from copypaste_ser.errors import UserError

FOLD_SCHEMES = "loso, a number of folds K >= 3, or none (training material for combine)"


def parse_folds(value: str | int | None, source: str = "--folds") -> str | int | None:
    """``"loso"``, an int K >= 3, or None; anything else is a one-line error."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("loso", "none"):
        return text
    if text.isdigit() and int(text) >= 3:  # 3 groups: one each for test, dev and train
        return int(text)
    raise UserError(f"{source}={value!r}: use {FOLD_SCHEMES} (e.g. --folds loso or --folds 5)")


def speaker_classes(manifest: Manifest) -> dict[str, set[str]]:
    held: dict[str, set[str]] = defaultdict(set)
    for u in manifest:
        held[u.speaker].add(u.emotion)
    return dict(held)


def loso_assignments(manifest: Manifest, source: str = "") -> dict[str, dict[str, str]]:
    """Leave one speaker out; dev = the next speaker (cyclically) holding every class, else
    the next one holding the most classes."""
    held = speaker_classes(manifest)
    speakers = sorted(held)
    if len(speakers) < 3:
        raise UserError(f"{source or manifest.name}: {len(speakers)} speakers; leave-one-speaker-out needs at least 3")
    out: dict[str, dict[str, str]] = {}
    for i, spk in enumerate(speakers):
        others = [speakers[(i + k) % len(speakers)] for k in range(1, len(speakers))]
        dev = max(others, key=lambda s: (len(held[s]), -others.index(s)))  # first of the fullest
        out[f"loso-{spk}"] = {s: "test" if s == spk else "dev" if s == dev else "train" for s in speakers}
    return out


def kfold_groups(manifest: Manifest, k: int, source: str = "", seed: int = 0, tries: int = 64) -> list[list[str]]:
    """Speakers dealt into ``k`` groups: every group holds as many classes as the speakers allow
    and about as many utterances of each class as the others (stratified group k-fold).

    A seeded search: scikit-learn's StratifiedGroupKFold under ``tries`` shuffles, plus a
    greedy deal that spreads the rarest classes first; the assignment with the fewest missing
    (group, class) pairs, then the smallest squared deviation of the per-class counts from an
    even share, wins. Deterministic for a given ``seed``."""
    from sklearn.model_selection import StratifiedGroupKFold

    held = speaker_classes(manifest)
    if len(held) < k:
        raise UserError(f"{source or manifest.name}: {len(held)} speakers cannot make {k} speaker-independent "
                        f"folds; use --folds {len(held)} or fewer (or --folds loso)")
    speakers = [u.speaker for u in manifest]
    emotions = [u.emotion for u in manifest]
    candidates = [_greedy_groups(manifest, k)]
    with warnings.catch_warnings():  # "least populated class has fewer members than n_splits"
        warnings.simplefilter("ignore")
        for t in range(tries):
            split = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed + t)
            groups = [sorted({speakers[i] for i in test}) for _, test in
                      split.split(np.zeros(len(speakers)), emotions, groups=speakers)]
            if all(groups):
                candidates.append(groups)
    return min(candidates, key=lambda g: _imbalance(manifest, g))


def _imbalance(manifest: Manifest, groups: list[list[str]]) -> tuple[int, float]:
    """(missing (group, class) pairs, squared deviation of per-class counts from an even share)."""
    where = {s: g for g, members in enumerate(groups) for s in members}
    counts = np.zeros((len(groups), len(manifest.labels)))
    index = {c: i for i, c in enumerate(manifest.labels)}
    for u in manifest:
        counts[where[u.speaker], index[u.emotion]] += 1
    present = counts.sum(axis=0) > 0
    missing = int(((counts == 0) & present).sum())
    return missing, float(((counts - counts.sum(axis=0) / len(groups)) ** 2).sum())


def fold_sizes(manifest: Manifest, groups: list[list[str]]) -> str:
    """"group 1: 80 utterances (angry 20, ...)" per group, for prepare's output."""
    where = {s: g for g, members in enumerate(groups) for s in members}
    counts = [defaultdict(int) for _ in groups]
    for u in manifest:
        counts[where[u.speaker]][u.emotion] += 1
    return "; ".join(f"kfold-{g + 1} tests {sum(c.values())} ("
                     + ", ".join(f"{lab} {c[lab]}" for lab in manifest.labels if lab in c) + ")"
                     for g, c in enumerate(counts))


def _greedy_groups(manifest: Manifest, k: int) -> list[list[str]]:
    """Rarest classes first, each speaker to the group missing most of its classes, then the smallest."""
    held = speaker_classes(manifest)
    holders = {c: sum(c in h for h in held.values()) for c in manifest.labels}
    n_utts: dict[str, int] = defaultdict(int)
    for u in manifest:
        n_utts[u.speaker] += 1
    order = sorted(held, key=lambda s: (min((holders[c] for c in held[s]), default=0), -len(held[s]), s))
    cap = -(-len(held) // k)
    groups: list[list[str]] = [[] for _ in range(k)]
    covered: list[set[str]] = [set() for _ in range(k)]
    size = [0] * k
    for spk in order:
        open_ = [g for g in range(k) if len(groups[g]) < cap]
        g = max(open_, key=lambda g: (len(held[spk] - covered[g]), -size[g], -len(groups[g]), -g))
        groups[g].append(spk)
        covered[g] |= held[spk]
        size[g] += n_utts[spk]
    return [sorted(g) for g in groups]


def kfold_assignments(manifest: Manifest, k: int, source: str = "") -> dict[str, dict[str, str]]:
    return _assign(kfold_groups(manifest, k, source))


def _assign(groups: list[list[str]]) -> dict[str, dict[str, str]]:
    k = len(groups)
    out = {}
    for i in range(k):
        dev = (i + 1) % k
        out[f"kfold-{i + 1}"] = {s: "test" if g == i else "dev" if g == dev else "train"
                                 for g, members in enumerate(groups) for s in members}
    return out


def cv_folds(manifest: Manifest, scheme: str | int, source: str = "") -> tuple[list[Fold], str]:
    """The folds of ``--folds loso|K`` (every speaker tested once) and a sentence saying how."""
    if scheme == "loso":
        assign = loso_assignments(manifest, source)
        how = ("Folds 'loso-<speaker>': leave one speaker out; dev = the next speaker in sorted order "
               "(cyclically) that holds every class (else the one holding most).")
    else:
        groups = kfold_groups(manifest, int(scheme), source)
        assign = _assign(groups)
        how = (f"Folds 'kfold-1'..'kfold-{scheme}': speakers dealt into {scheme} groups balancing the "
               f"utterances of each class (stratified group k-fold, seeded search); fold i tests group i, "
               f"develops on group i+1 (cyclically), trains on the rest. Sizes: {fold_sizes(manifest, groups)}.")
    folds = [f for f in folds_by_speaker(manifest, assign) if f.train and f.test]
    return folds, how + " Each utterance is tested in exactly one fold."


def missing_classes(manifest: Manifest, fold: Fold) -> dict[str, list[str]]:
    """{split: classes of the corpus it holds no utterance of} for the splits lacking some."""
    out = {}
    anywhere = {u.emotion for u in manifest}  # a declared label no utterance has is lacked by none
    for split in ("train", "dev", "test"):
        present = {manifest[i].emotion for i in fold.split(split)}
        lacking = [c for c in manifest.labels if c in anywhere and c not in present]
        if lacking:
            out[split] = lacking
    return out


def check_fold(manifest: Manifest, fold: Fold, source: str) -> dict[str, list[str]]:
    """Refuse a fold ``train`` cannot use (no dev utterances; a class absent from train);
    return what its dev and test splits lack (:func:`missing_classes`)."""
    if not fold.dev:
        raise UserError(f"{source}: fold {fold.name!r} has no dev utterances, which training needs to "
                        f"choose its epoch; give some rows split=dev, or drop the split column to get "
                        f"a speaker-independent split")
    lacking = missing_classes(manifest, fold)
    if "train" in lacking:
        cls = lacking["train"][0]
        who = sorted({u.speaker for u in manifest if u.emotion == cls})
        raise UserError(f"{source}: fold {fold.name!r} has no {cls!r} in train (only speaker(s) "
                        f"{', '.join(who[:5])} have it); map it to another label with --label-map "
                        f"or drop its rows")
    return lacking


def check_folds(manifest: Manifest, protocol: Protocol, source: str) -> list[str]:
    """:func:`check_fold` for every fold; one warning per fold whose dev or test lacks a class."""
    warnings = []
    for fold in protocol.folds:
        if fold.name == TRAIN_ONLY_FOLD:  # training material for combine: nothing to check here
            continue
        gaps = "; ".join(f"{split} lacks {', '.join(c)}" for split, c in check_fold(manifest, fold, source).items())
        if gaps:
            warnings.append(f"fold {fold.name!r}: {gaps}")
    return warnings


def warn(messages: list[str], source: str) -> None:
    """Warnings to stderr, one line each (the CLI shows them; they are also in protocol.json)."""
    for m in messages:
        print(f"warning: {source}: {m}", file=sys.stderr)


__all__ = ["parse_folds", "cv_folds", "loso_assignments", "kfold_assignments", "kfold_groups", "missing_classes",
           "check_fold", "check_folds", "warn"]
