"""VoxCeleb1/2 (celebrity interviews) as a speaker corpus for speaker-ID pretraining.

Layout: ``<root>/wav/<speaker>/<video>/<nnnnn>.wav`` (VoxCeleb1 as distributed), or the
speaker folders directly in ``<root>`` (``<root>/id10001/...``), or anywhere below
``<root>`` (e.g. VoxCeleb2's ``dev/aac/id00012/...``): a file counts when its grand-parent
folder is named like ``id10001``. .wav or .flac.

VoxCeleb2 ships AAC (.m4a), which this toolkit does not decode: an .m4a without a .wav or
.flac of the same name next to it is refused with the ffmpeg command that converts it.

Speaker ids are the VoxCeleb ids (``id10001``); utterance ids are
``<speaker>-<video>-<nnnnn>``; ``extra`` holds the video id, and gender and nationality
when ``vox1_meta.csv`` / ``vox2_meta.csv`` (tab- or comma-separated, as distributed) lies in
``<root>``. Every utterance has emotion ``"unknown"`` (the only label, ``neutral`` None).

Protocol: one fold ``speaker-id`` with every utterance in train (manifest.SPEAKER_FOLD);
speaker.py holds out about 30 % of each speaker's utterances for dev itself.
"""

from __future__ import annotations

import re
from pathlib import Path

from copypaste_ser.data.corpora.common import (
    AUDIO_SUFFIXES,
    finish_speaker_corpus,
    make_utterance,
    require_dir,
)
from copypaste_ser.data.manifest import NO_EMOTION, Manifest, Protocol
from copypaste_ser.errors import UserError

SPEAKER_RE = re.compile(r"^id\d+$")
CONVERT = "ffmpeg -i IN.m4a -ac 1 -ar 16000 IN.wav"


def _meta(root: Path) -> dict[str, dict[str, str]]:
    """speaker id -> {gender, nationality} from vox1_meta.csv / vox2_meta.csv, when present."""
    out: dict[str, dict[str, str]] = {}
    for name in ("vox1_meta.csv", "vox2_meta.csv"):
        path = root / name
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
            fields = [f.strip() for f in re.split(r"\t|,", line)]
            spk = next((f for f in fields if SPEAKER_RE.match(f)), None)
            gender = next((f for f in fields if f in ("m", "f")), None)
            if spk is None:
                continue
            info = {}
            if gender:
                info["gender"] = {"m": "male", "f": "female"}[gender]
            if name == "vox1_meta.csv" and len(fields) >= 4:
                info["nationality"] = fields[3]
            out[spk] = info
    return out


def _files(root: Path) -> list[Path]:
    """Audio files whose grand-parent folder is a speaker id; refuses unconverted .m4a."""
    files, m4a = [], []
    for p in sorted(root.rglob("*")):
        if p.name.startswith(".") or not SPEAKER_RE.match(p.parent.parent.name):
            continue
        suffix = p.suffix.lower()
        if suffix in AUDIO_SUFFIXES and p.is_file():
            files.append(p)
        elif suffix == ".m4a":
            m4a.append(p)
    have = {f.with_suffix("") for f in files}
    missing = [p for p in m4a if p.with_suffix("") not in have]
    if missing:
        raise UserError(f"{missing[0]}: VoxCeleb .m4a audio cannot be read ({len(missing)} such files); "
                        f"convert each to 16 kHz mono wav first, e.g. `{CONVERT}`")
    return files


def prepare(root: Path) -> tuple[Manifest, Protocol]:
    root = require_dir(root, "VoxCeleb")
    files = _files(root)
    if not files:
        raise UserError(f"{root}: no VoxCeleb files (wav/idNNNNN/VIDEO/NNNNN.wav) found")
    meta = _meta(root)
    utts = []
    for path in files:
        spk, video = path.parent.parent.name, path.parent.name
        extra = {"video": video, **meta.get(spk, {})}
        utts.append(make_utterance(f"{spk}-{video}-{path.stem}", path, spk, NO_EMOTION, extra))
    return finish_speaker_corpus("voxceleb", "VoxCeleb", utts, root)
