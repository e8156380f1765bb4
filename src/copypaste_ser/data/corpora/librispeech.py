"""LibriSpeech (read English audiobooks) as a speaker corpus for speaker-ID pretraining.

Layout: ``<root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` as
distributed (``<root>`` is the LibriSpeech folder holding subsets such as train-clean-100;
it may also be one subset folder). Flatter copies are accepted too, e.g.
``<subset>/<speaker>/*.flac`` or ``<subset>/*.flac``: only the file name carries the
speaker. .wav works as well as .flac.

``SPEAKERS.TXT`` (``ID | SEX | SUBSET | MINUTES | NAME``), looked for in ``<root>``, in each
subset folder and in the parent of ``<root>``, is optional; it gives ``extra["gender"]``.

Speaker ids are ``libri-<speaker>``; utterance ids are the file stems; ``extra`` holds
subset, chapter and gender when known. Every utterance has emotion ``"unknown"`` (the only
label, ``neutral`` None).

Protocol: one fold ``speaker-id`` with every utterance in train (manifest.SPEAKER_FOLD);
speaker.py holds out about 30 % of each speaker's utterances for dev itself.
Option ``subsets``: comma-separated subset folder names to keep (default: all).
"""

from __future__ import annotations

import re
from pathlib import Path

from copypaste_ser.data.corpora.common import audio_files, finish_speaker_corpus, make_utterance, require_dir
from copypaste_ser.data.manifest import NO_EMOTION, Manifest, Protocol
from copypaste_ser.errors import UserError

NAME_RE = re.compile(r"^(\d+)-(\d+)-(\d+)$")
GENDER = {"F": "female", "M": "male"}


def read_speakers_txt(path: Path) -> dict[str, str]:
    """speaker id -> gender ('female'/'male') from a LibriSpeech SPEAKERS.TXT."""
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(";") or "|" not in line:
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) >= 2 and fields[0].isdigit() and fields[1] in GENDER:
            out[fields[0]] = GENDER[fields[1]]
    return out


def _genders(root: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    candidates = [root.parent / "SPEAKERS.TXT", root / "SPEAKERS.TXT"]
    candidates += sorted(d / "SPEAKERS.TXT" for d in root.iterdir() if d.is_dir())
    for path in candidates:
        if path.is_file():
            found.update(read_speakers_txt(path))
    return found


def prepare(root: Path, subsets: str | None = None) -> tuple[Manifest, Protocol]:
    root = require_dir(root, "LibriSpeech")
    wanted = {s.strip() for s in subsets.split(",") if s.strip()} if subsets else None
    files = audio_files(root)
    if wanted is not None:
        files = [f for f in files if f.relative_to(root).parts[0] in wanted]
    if not files:
        what = f" in subsets {', '.join(sorted(wanted))}" if wanted else ""
        raise UserError(f"{root}: no LibriSpeech files (*.flac|*.wav named like 19-198-0001){what} found")
    genders = _genders(root)
    utts = []
    for path in files:
        m = NAME_RE.match(path.stem)
        if not m:
            raise UserError(f"{path}: not a LibriSpeech file name (expected SPEAKER-CHAPTER-UTT like 19-198-0001)")
        spk, chapter, _ = m.groups()
        rel = path.relative_to(root).parts
        extra = {"chapter": chapter, "subset": rel[0] if len(rel) > 1 else root.name}
        if spk in genders:
            extra["gender"] = genders[spk]
        utts.append(make_utterance(path.stem, path, f"libri-{spk}", NO_EMOTION, extra))
    return finish_speaker_corpus("librispeech", "LibriSpeech", utts, root)
