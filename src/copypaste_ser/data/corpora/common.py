"""What every corpus recipe shares: label names, audio-file discovery, utterance building,
speaker splits and the final fold choice + validation (``finish``).

The recipe modules import these from here; ``corpora/__init__.py`` imports the recipes and
re-exports the helpers, so nothing here may import a recipe or the package.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import soundfile as sf

# the recipes import the audio-file helpers from here with the rest
from copypaste_ser.data.audio import AUDIO_SUFFIXES, audio_duration, audio_files, is_audio_file  # noqa: F401
from copypaste_ser.data.manifest import Fold, Manifest, Protocol, Utterance, folds_by_speaker, validate
from copypaste_ser.errors import UserError


#: Every label a recipe may emit, in the order used for label lists.
CANONICAL_LABELS = ("neutral", "angry", "happy", "sad", "fear", "disgust", "boredom", "calm",
                    "surprise", "contempt")

#: The paper's four classes (IEMOCAP, CREMA-D), offered as ``classes="paper4"`` by recipes.
PAPER4 = ["neutral", "angry", "happy", "sad"]

#: Spellings accepted by the generic CSV / folder import, mapped to the canonical names.
LABEL_SYNONYMS = {
    "neutral": "neutral", "neu": "neutral", "n": "neutral",
    "angry": "angry", "anger": "angry", "ang": "angry", "mad": "angry",
    "happy": "happy", "happiness": "happy", "hap": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad",
    "fear": "fear", "fearful": "fear", "fea": "fear", "afraid": "fear",
    "disgust": "disgust", "disgusted": "disgust", "dis": "disgust",
    "boredom": "boredom", "bored": "boredom",
    "calm": "calm",
    "surprise": "surprise", "surprised": "surprise", "sur": "surprise",
    "contempt": "contempt",
}


# ---------------------------------------------------------------- shared helpers
def require_dir(root: Path | str, what: str) -> Path:
    """Return ``root`` as an absolute Path, or raise if it is not an existing folder."""
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"{root}: {what} folder does not exist")
    if not root.is_dir():
        raise UserError(f"{root}: not a folder (expected the {what} corpus folder)")
    return root.resolve()


def class_set(corpus: str, class_sets: dict[str, list[str]], classes: str) -> list[str]:
    """The labels a recipe keeps for its ``classes`` option; an unknown option names the choices."""
    if classes not in class_sets:
        raise UserError(f"{corpus} option classes={classes!r}: choose one of {', '.join(class_sets)}")
    return class_sets[classes]


def resolve_audio(path: Path) -> Path | None:
    """``path`` if it exists, else the same name with .wav <-> .flac swapped, else None."""
    if path.is_file():
        return path
    for suffix in AUDIO_SUFFIXES:
        alt = path.with_suffix(suffix)
        if alt.is_file():
            return alt
    return None


def ordered_labels(present: Iterable[str], order: Iterable[str] = CANONICAL_LABELS) -> list[str]:
    present = set(present)
    order = list(order)
    return [lab for lab in order if lab in present] + sorted(present - set(order))


def make_utterance(utt_id: str, audio: Path, speaker: str, emotion: str,
                   extra: dict[str, str] | None = None) -> Utterance:
    return Utterance(id=utt_id, audio=str(Path(audio).resolve()), speaker=speaker, emotion=emotion,
                     duration=round(audio_duration(audio), 4),
                     extra={k: str(v) for k, v in (extra or {}).items()})


def check_unique_ids(utts: list[Utterance], source: Path | str) -> None:
    seen: dict[str, str] = {}
    for u in utts:
        if seen.get(u.id) == u.audio:  # one file listed twice would count twice, maybe with two labels
            raise UserError(f"{u.audio}: listed twice in {source}; list each audio file once")
        if u.id in seen:
            raise UserError(f"{u.audio}: utterance id {u.id!r} is also used by {seen[u.id]} "
                            f"(in {source}); keep one copy (.wav or .flac), not both")
        seen[u.id] = u.audio


def is_constant_audio(path: str | Path, block: int = 65536) -> bool:
    """True when every sample of the file is the same value (digital silence). Reads block by
    block and stops at the first varying block, so speech costs one block."""
    first = None
    with sf.SoundFile(str(path)) as f:
        for chunk in f.blocks(blocksize=block, dtype="int16", always_2d=True):
            if first is None and chunk.size:
                first = chunk.flat[0]
            if chunk.size and (chunk != first).any():
                return False
    return True


def drop_empty(utts: list[Utterance]) -> tuple[list[Utterance], int]:
    """Drop header-only (zero-length) and digitally silent files: CREMA-D's 1076_MTI_SAD_XX.wav
    is one or the other depending on the copy, and no model can learn from either."""
    kept = [u for u in utts if u.duration > 0 and not is_constant_audio(u.audio)]
    return kept, len(utts) - len(kept)


def speaker_folds(manifest: Manifest, assignments: dict[str, dict[str, str]]) -> list[Fold]:
    """Folds from speaker assignments, leaving out folds whose train or test split is empty
    (happens when a corpus copy lacks some speakers)."""
    return [f for f in folds_by_speaker(manifest, assignments) if f.train and f.test]


def loso_assignments(speakers: list[str], prefix: str = "loso-") -> dict[str, dict[str, str]]:
    """Leave-one-speaker-out: test = one speaker, dev = the next speaker in sorted order
    (cyclically), train = the rest. Needs at least three speakers."""
    speakers = sorted(speakers)
    out: dict[str, dict[str, str]] = {}
    if len(speakers) < 3:
        return out
    for i, spk in enumerate(speakers):
        dev = speakers[(i + 1) % len(speakers)]
        out[f"{prefix}{spk}"] = {s: "test" if s == spk else "dev" if s == dev else "train"
                                 for s in speakers}
    return out


def shuffled_split(items: list[str], test_frac: float, dev_frac: float, seed: int = 0,
                   what: str = "speakers", source: Path | str = "") -> dict[str, str]:
    """Deterministic random partition: sort ``items``, permute with
    ``numpy.random.default_rng(seed)``, the first round(test_frac*n) (at least 1) go to test,
    the next round(dev_frac*n) (at least 1) to dev, the rest (at least 1) to train."""
    items = sorted(items)
    n = len(items)
    if n < 3:
        raise UserError(f"{source}: only {n} {what} found; a speaker-independent "
                        f"train/dev/test split needs at least 3")
    n_test = max(1, int(round(test_frac * n)))
    n_dev = max(1, int(round(dev_frac * n)))
    while n_test + n_dev > n - 1:  # keep at least one for training
        if n_test >= n_dev and n_test > 1:
            n_test -= 1
        else:
            n_dev -= 1
    perm = [items[i] for i in np.random.default_rng(seed).permutation(n)]
    out = {s: "test" for s in perm[:n_test]}
    out.update({s: "dev" for s in perm[n_test:n_test + n_dev]})
    out.update({s: "train" for s in perm[n_test + n_dev:]})
    return out


def finish(manifest: Manifest, folds: list[Fold], default: str, description: str,
           source: Path | str) -> tuple[Manifest, Protocol]:
    """Pick the default fold (falling back to the first fold when the preferred one could not
    be made), validate and return."""
    if not folds:
        raise UserError(f"{source}: too few speakers to make any speaker-independent fold "
                        f"({len(manifest.speakers)} found)")
    names = [f.name for f in folds]
    if default not in names:
        description += f" Fold {default!r} could not be made from the speakers present; " \
                       f"default is {names[0]!r}."
        default = names[0]
    protocol = Protocol(folds, default, description.strip())
    validate(manifest, protocol, check_files=False, source=str(source))
    return manifest, protocol


def refuse_empty_classes(manifest: Manifest, source: Path | str) -> None:
    """A class with no utterance would make a model with a dead output (EmoDB's 4-class copy read
    as 7 classes did): one line naming the classes and the option that fits the copy."""
    held = {u.emotion for u in manifest}
    empty = [c for c in manifest.labels if c not in held]
    if empty and held:
        hint = " use --classes paper4" if held <= set(PAPER4) else " drop them from the label set"
        raise UserError(f"{source}: no utterance of {', '.join(empty)} in this copy of the corpus "
                        f"(it holds {', '.join(c for c in manifest.labels if c in held)});{hint}")


def finish_speaker_corpus(name: str, title: str, utts: list[Utterance],
                          root: Path) -> tuple[Manifest, Protocol]:
    """Manifest + the single 'speaker-id' fold of a speaker corpus (no emotion labels)."""
    from copypaste_ser.data.manifest import NO_EMOTION, speaker_protocol

    check_unique_ids(utts, root)
    utts, n_empty = drop_empty(utts)
    manifest = Manifest(name, [NO_EMOTION], utts, neutral=None)
    description = (f"speaker-id: {title} speaker corpus; fold 'speaker-id' trains on every utterance, "
                   "speaker pretraining holds out ~30 % of each speaker's utterances for dev.")
    if n_empty:
        description += f" {n_empty} zero-length or silent files skipped."
    protocol = speaker_protocol(manifest, description)
    validate(manifest, protocol, check_files=False, source=str(root))
    return manifest, protocol
