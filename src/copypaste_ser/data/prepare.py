"""Run a corpus recipe and write the prepared corpus folder (manifest, labels, protocol)."""

from __future__ import annotations

from pathlib import Path

from copypaste_ser.data.manifest import CORPUS_FILES, Manifest, Protocol, save_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.files.outputs import check_outputs, record_outputs


def prepare_to_dir(name: str, root: str | Path | None, out: str | Path, force: bool = False,
                   **options) -> tuple[Manifest, Protocol]:
    """``prepare_corpus`` then ``save_corpus``; an existing prepared folder needs ``force``.

    Cached features under ``out/features`` survive a re-prepare where the audio is the same:
    they are keyed by utterance id, feature config and the audio file's path, size and
    modification time (feature_cache.audio_stamp), so other audio under the same ids is extracted again.
    """
    from copypaste_ser.data.corpora import prepare_corpus

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file, not a folder; choose another --out")
    if (out / "manifest.jsonl").exists() and not force:
        raise UserError(f"{out}: already holds a prepared corpus; pass --force to replace it")
    files = [out / name for name in CORPUS_FILES]
    check_outputs(files, force, "--out")  # --force replaces only what prepare wrote
    manifest, protocol = prepare_corpus(name, root, **options)  # folder --csv needs no root
    save_corpus(out, manifest, protocol)
    record_outputs(files)
    return manifest, protocol
