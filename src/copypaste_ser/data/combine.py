"""Several prepared corpora as one, for training across corpora and languages.

``combine_corpora([data/emodb, data/ravdess, ...])`` names each corpus by its folder, keeps the labels every corpus has (or the
ones asked for), prefixes utterance and speaker ids with the corpus name (so two corpora never
share a speaker), records each utterance's corpus in ``extra["corpus"]``, and writes a protocol of
leave-one-corpus-out folds: fold ``loco-<name>`` tests on all of corpus ``name``, develops on a
seeded share of the other corpora's speakers (corpora of one or two speakers give them all to
training) and trains on the rest. With ``within="ravdess"`` the folds are instead that corpus's own
(same names, same dev and test speakers) with every other corpus added to training: a within-corpus
test of a model trained across corpora. ``train --balance corpus+class`` then draws each epoch's
items so every corpus and class weighs the same (training/trainset.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from copypaste_ser.data.manifest import Fold, Manifest, Protocol, combined_id, load_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.validation import SEED, check

#: The dev share of each training corpus's speakers in a leave-one-corpus-out fold.
DEV_SHARE = 0.15
#: The fold that trains on every corpus (a final model, e.g. the shipped default).
ALL_FOLD = "all-corpora"


def shared_labels(manifests: list[Manifest], labels: list[str] | None) -> list[str]:
    """``labels`` (each must be in every corpus), else the labels all corpora share, in the
    first corpus's order."""
    if labels is not None:
        twice = sorted({lab for lab in labels if labels.count(lab) > 1})
        if twice:
            raise UserError(f"--labels: {twice[0]!r} is given twice; give each label once")
        if len(labels) < 2:  # one class is no emotion recognition task
            raise UserError(f"--labels: {', '.join(labels) or 'no label'} given; give at least two labels every "
                            f"corpus has, e.g. --labels neutral,angry,happy,sad")
        for m in manifests:
            missing = [lab for lab in labels if lab not in m.labels]
            if missing:
                raise UserError(f"--labels: corpus {m.name!r} has no {', '.join(missing)} "
                                f"(it has {', '.join(m.labels)}); leave that label out or that corpus out")
        return list(labels)
    common = [lab for lab in manifests[0].labels if all(lab in m.labels for m in manifests[1:])]
    if len(common) < 2:
        raise UserError(f"the corpora share fewer than two labels ({', '.join(common) or 'none'}); "
                        f"give --labels that every corpus has")
    return common


def dev_speakers(speakers: list[str], seed: int, share: float = DEV_SHARE) -> set[str]:
    """A seeded share of a corpus's speakers for dev (none from corpora of one or two speakers)."""
    if len(speakers) < 3:
        return set()
    rng = np.random.default_rng(seed)
    k = max(1, int(round(share * len(speakers))))
    return {speakers[i] for i in rng.permutation(len(speakers))[:k]}


def replace_name(manifest: Manifest, name: str) -> Manifest:
    return Manifest(name, manifest.labels, manifest.utterances, manifest.neutral)


def combine_corpora(folders: list[str | Path], labels: list[str] | None = None, seed: int = 0,
                    name: str = "combined", within: str | None = None) -> tuple[Manifest, Protocol]:
    """The union of prepared corpora with a shared label set and leave-one-corpus-out folds
    (or, with ``within``, that corpus's own folds with the others added to training)."""
    if len(folders) < 2:
        raise UserError("combine: give at least two prepared corpora")
    check("--seed", seed, SEED)
    # each corpus is named by its prepared folder (data/nemo -> nemo): CSV corpora are all "list"
    loaded = [load_corpus(Path(f)) for f in folders]
    manifests = [replace_name(m, Path(f).name or Path(f).resolve().name) for (m, _), f in zip(loaded, folders)]
    names = [m.name for m in manifests]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"combine: corpus {twice[0]!r} is given twice; give each corpus once")
    keep = shared_labels(manifests, labels)
    utterances = []
    for m in manifests:
        for u in m:
            if u.emotion not in keep:
                continue
            speaker = u.speaker if u.speaker.startswith(f"{m.name}-") else f"{m.name}-{u.speaker}"
            utterances.append(replace(u, id=combined_id(m.name, u.id), speaker=speaker,
                                      extra={**u.extra, "corpus": m.name}))
    neutral = "neutral" if "neutral" in keep else None
    combined = Manifest(name, keep, utterances, neutral=neutral)
    if within is None:
        return combined, loco_protocol(combined, names, seed)
    if within not in names:
        raise UserError(f"--within: {within!r} is not one of the corpora given ({', '.join(names)}); "
                        f"name it by its folder's name")
    return combined, within_protocol(combined, within, loaded[names.index(within)][1])


def loco_protocol(manifest: Manifest, corpora: list[str], seed: int = 0) -> Protocol:
    """Fold ``loco-<corpus>`` for each corpus: test all of it, dev a share of the others' speakers."""
    by_corpus: dict[str, list[str]] = {c: [] for c in corpora}
    for u in manifest:
        by_corpus[u.extra["corpus"]].append(u.id)
    speakers = {c: sorted({manifest[i].speaker for i in ids}) for c, ids in by_corpus.items()}
    dev = set().union(*(dev_speakers(speakers[c], seed + k) for k, c in enumerate(corpora)))
    folds = []
    for held_out in corpora:
        train = [u.id for u in manifest if u.extra["corpus"] != held_out and u.speaker not in dev]
        dev_ids = [u.id for u in manifest if u.extra["corpus"] != held_out and u.speaker in dev]
        folds.append(Fold(f"loco-{held_out}", train, dev_ids, list(by_corpus[held_out])))
    folds.append(all_corpora_fold(manifest, dev))
    description = (f"{', '.join(corpora)} combined on labels {', '.join(manifest.labels)}; fold 'loco-C' tests on "
                   f"all of corpus C, develops on {DEV_SHARE:.0%} of the other corpora's speakers (seed {seed}), "
                   f"trains on the rest; fold '{ALL_FOLD}' (for a final model) trains on every corpus but those dev "
                   f"speakers, which it splits alternately into dev and a held-out test (not a cross-corpus test)")
    return Protocol(folds, folds[0].name, description)


def within_protocol(manifest: Manifest, within: str, own: Protocol) -> Protocol:
    """Each fold of corpus ``within``'s own protocol, its dev and test kept, every utterance of
    the other corpora added to its training set."""
    present = {u.id for u in manifest}

    def ids(own_ids: list[str]) -> list[str]:  # the combined ids of kept labels, in the fold's order
        return [combined_id(within, i) for i in own_ids if combined_id(within, i) in present]

    others = [u.id for u in manifest if u.extra["corpus"] != within]
    folds = [Fold(f.name, ids(f.train) + others, ids(f.dev), ids(f.test)) for f in own.folds]
    corpora = sorted({u.extra["corpus"] for u in manifest} - {within})
    description = (f"the folds of {within} (its own dev and test speakers) with all of {', '.join(corpora)} "
                   f"added to training, on labels {', '.join(manifest.labels)}")
    return Protocol(folds, own.default, description)


def all_corpora_fold(manifest: Manifest, dev: set[str]) -> Fold:
    """Train on every corpus but the dev speakers; those alternate (sorted) between dev and test."""
    held = sorted(dev)
    test_speakers = set(held[1::2])
    train = [u.id for u in manifest if u.speaker not in dev]
    dev_ids = [u.id for u in manifest if u.speaker in dev and u.speaker not in test_speakers]
    test = [u.id for u in manifest if u.speaker in test_speakers]
    return Fold(ALL_FOLD, train, dev_ids, test)

