"""Corpus recipes: turn a corpus folder as distributed into a Manifest and a split Protocol.

Every recipe module exposes ``prepare(root: Path, **options) -> (Manifest, Protocol)``:
audio paths are absolute, durations come from the file headers, labels are lowercase
English names (see ``CANONICAL_LABELS``) and ``extra`` holds corpus extras as strings.
``RECIPES`` maps corpus names to those functions; ``prepare_corpus`` is the checked entry
point used by the CLI.

The helpers the recipes share live in common.py (re-exported here).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

# ---------------------------------------------------------------- registry
from copypaste_ser.data.corpora import (
    crema_d,
    emodb,
    folder,
    iemocap,
    librispeech,
    msp_podcast,
    ravdess,
    synthetic,
    voxceleb,
)
from copypaste_ser.data.corpora.common import CANONICAL_LABELS, LABEL_SYNONYMS, finish
from copypaste_ser.data.manifest import Manifest, Protocol
from copypaste_ser.errors import UserError

RECIPES: dict[str, Callable[..., tuple[Manifest, Protocol]]] = {
    "emodb": emodb.prepare,
    "ravdess": ravdess.prepare,
    "crema-d": crema_d.prepare,
    "iemocap": iemocap.prepare,
    "msp-podcast": msp_podcast.prepare,
    "folder": folder.prepare,
    "synthetic": synthetic.prepare,
    "librispeech": librispeech.prepare,
    "voxceleb": voxceleb.prepare,
}


def recipe(name: str) -> Callable[..., tuple[Manifest, Protocol]]:
    key = name.strip().lower().replace("_", "-")
    key = {"cremad": "crema-d", "msppodcast": "msp-podcast", "msp": "msp-podcast",
           "csv": "folder"}.get(key, key)
    if key not in RECIPES:
        raise UserError(f"unknown corpus {name!r}: choose one of {', '.join(RECIPES)}")
    return RECIPES[key]


def prepare_corpus(name: str, root: Path | str | None, **options) -> tuple[Manifest, Protocol]:
    """Run the recipe ``name`` on ``root``; UserError for unknown names, options or roots.

    ``folds="loso"|K`` works for every emotion recipe: the protocol then holds exactly those
    speaker-independent folds (corpora/folds.py), each speaker tested once."""
    from copypaste_ser.data.corpora.folds import check_folds, cv_folds, parse_folds, warn

    fn = recipe(name)
    params = inspect.signature(fn).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    generic = {} if "folds" in params or "folds" not in options else {"folds": options.pop("folds")}
    if not accepts_any:
        allowed = [p for p in list(params)[1:]]
        bad = sorted(set(options) - set(allowed))
        if bad:
            raise UserError(f"corpus {name!r} has no option {bad[0]!r}"
                            f" (options: {', '.join(allowed + ['folds']) or 'none'})")
    if root is None and fn is not folder.prepare:
        raise UserError(f"corpus {name!r} needs --root, the folder that holds it")
    scheme = parse_folds(generic.get("folds"))
    manifest, protocol = fn(Path(root) if root is not None else None, **options)
    if scheme is not None:
        folds, how = cv_folds(manifest, scheme, str(root))
        manifest, protocol = finish(manifest, folds, folds[0].name if folds else "", how, str(root))
        warn(check_folds(manifest, protocol, str(root)), str(root))
    return manifest, protocol


__all__ = ["RECIPES", "prepare_corpus", "recipe", "CANONICAL_LABELS", "LABEL_SYNONYMS"]
