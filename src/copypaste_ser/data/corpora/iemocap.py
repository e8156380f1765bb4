"""IEMOCAP: 5 sessions, each one male and one female actor in dyadic conversations.

Layout (IEMOCAP_full_release): ``<root>/Session{1..5}/dialog/EmoEvaluation/<dialog>.txt``
holds one summary line per turn::

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]

(start, end, utterance id, majority label, [valence, activation, dominance]); audio is
``<root>/Session{K}/sentences/wav/<dialog>/<utterance>.wav`` (.flac accepted) and, when present,
``<root>/Session{K}/dialog/transcriptions/<dialog>.txt`` gives the text
(``Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.``). ``<root>`` may also be the folder
that holds ``IEMOCAP_full_release/``.

Labels: ang -> angry, hap -> happy, neu -> neutral, sad -> sad; with ``merge_excited=True``
exc -> happy as well (the common 4-class setup with 5531 utterances); fru, sur, fea, dis,
oth, xxx (and exc by default) are dropped.

Speaker: the session prefix plus the gender letter of the utterance's last field, so
``Ses01F_impro01_M003`` is spoken by ``Ses01M`` (the dialog name's letter says who wore the
markers, not who speaks). ``extra``: session, gender, start, end, valence, activation,
dominance, text (when transcriptions exist).

Protocol: 5-fold cross-validation over sessions as in the paper: ``fold-K`` (K = 1..5)
tests on session K, develops on session K % 5 + 1, trains on the other three; the default
fold is ``fold-1``.
"""

from __future__ import annotations

import re
from pathlib import Path

from copypaste_ser.data.corpora.common import (
    check_unique_ids,
    drop_empty,
    finish,
    make_utterance,
    require_dir,
    resolve_audio,
    speaker_folds,
)
from copypaste_ser.data.manifest import Manifest, Protocol
from copypaste_ser.errors import UserError

LINE_RE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(Ses\d\d[FM]_\S+)\s+(\w+)\s+\[([^\]]*)\]")
UTT_RE = re.compile(r"^Ses(\d\d)[FM]_.*_([FM])\d+$")
TRANS_RE = re.compile(r"^(Ses\d\d[FM]_\S+)\s+\[[^\]]*\]:\s?(.*)$")
KEEP = {"ang": "angry", "hap": "happy", "neu": "neutral", "sad": "sad"}
DROPPED = {"exc", "fru", "sur", "fea", "dis", "oth", "xxx"}
LABELS = ["neutral", "angry", "happy", "sad"]


def read_transcriptions(session_dir: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    folder = session_dir / "dialog" / "transcriptions"
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.txt")):
        if path.name.startswith("."):
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            m = TRANS_RE.match(line.strip())
            if m:
                out[m.group(1)] = m.group(2).strip()
    return out


def _utterance(fields: tuple, emotion: str, where: str, session_dir: Path, transcripts: dict[str, str]):
    """The utterance of one evaluation line (start, end, id, label code, valence/activation/dominance)."""
    start, end, utt_id, code, vad = fields
    um = UTT_RE.match(utt_id)
    if not um:
        raise UserError(f"{where}: cannot read the speaker from utterance id {utt_id!r} "
                        f"(expected like Ses01F_impro01_M003)")
    session, gender = int(um.group(1)), um.group(2)
    dialog = utt_id.rsplit("_", 1)[0]
    wav = resolve_audio(session_dir / "sentences" / "wav" / dialog / f"{utt_id}.wav")
    if wav is None:
        raise UserError(f"{session_dir / 'sentences' / 'wav' / dialog / (utt_id + '.wav')}: "
                        f"audio of {utt_id} (listed in {where.rsplit(':', 1)[0]}) is missing")
    extra = {"session": str(session), "gender": "female" if gender == "F" else "male",
             "start": start, "end": end, "label_code": code.lower()}
    vals = [v.strip() for v in vad.split(",")]
    if len(vals) == 3:
        extra.update(valence=vals[0], activation=vals[1], dominance=vals[2])
    text = transcripts.get(utt_id)
    if text is not None:
        extra["text"] = text
    return make_utterance(utt_id, wav, f"Ses{session:02d}{gender}", emotion, extra)


def prepare(root: Path, merge_excited: bool = False) -> tuple[Manifest, Protocol]:
    root = require_dir(root, "IEMOCAP")
    keep = dict(KEEP, exc="happy") if merge_excited else dict(KEEP)
    if not any(root.glob("Session[1-5]")) and (root / "IEMOCAP_full_release").is_dir():
        root = root / "IEMOCAP_full_release"  # the folder holding the release folder
    sessions = sorted(p for p in root.glob("Session*") if p.is_dir() and re.fullmatch(r"Session\d", p.name))
    eval_files = [(s, p) for s in sessions
                  for p in sorted((s / "dialog" / "EmoEvaluation").glob("*.txt"))
                  if not p.name.startswith(".")]
    if not eval_files:
        raise UserError(f"{root}: no IEMOCAP files (Session*/dialog/EmoEvaluation/*.txt) found")
    utts = []
    n_dropped = 0
    transcripts: dict[Path, dict[str, str]] = {}
    for session_dir, path in eval_files:
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            m = LINE_RE.match(line.strip())
            if not m:
                continue  # headers, blank lines and per-annotator detail lines
            utt_id, code = m.group(3), m.group(4).lower()
            if code not in keep:
                if code not in DROPPED and code not in KEEP:
                    raise UserError(f"{path}:{lineno}: unknown IEMOCAP label {code!r} for {utt_id}")
                n_dropped += 1
                continue
            if session_dir not in transcripts:
                transcripts[session_dir] = read_transcriptions(session_dir)
            utts.append(_utterance(m.groups(), keep[code], f"{path}:{lineno}", session_dir,
                                   transcripts[session_dir]))
    if not utts:
        raise UserError(f"{root}: no IEMOCAP utterances with labels ang/hap/neu/sad found")
    check_unique_ids(utts, root)
    utts, n_empty = drop_empty(utts)
    manifest = Manifest("iemocap", list(LABELS), utts, "neutral")

    session_of = {s: int(s[3:5]) for s in manifest.speakers}
    assignments = {}
    for k in range(1, 6):
        dev = k % 5 + 1
        assignments[f"fold-{k}"] = {s: "test" if n == k else "dev" if n == dev else "train"
                                    for s, n in session_of.items()}
    description = ("IEMOCAP: 5-fold cross-validation by session; 'fold-K' tests on session K, "
                   "develops on session K%5+1, trains on the other three; report the mean over folds.")
    description += (" exc merged into happy." if merge_excited else " exc dropped (merge_excited=False).")
    description += f" {n_dropped} utterances with other labels dropped."
    if n_empty:
        description += f" {n_empty} zero-length or silent files skipped."
    return finish(manifest, speaker_folds(manifest, assignments), "fold-1", description, root)
