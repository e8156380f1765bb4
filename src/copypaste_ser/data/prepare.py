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
    check_prepared_out(out, force)
    manifest, protocol = prepare_corpus(name, root, **options)  # folder --csv needs no root
    write_prepared(out, manifest, protocol)
    return manifest, protocol


def check_prepared_out(out: Path, force: bool) -> None:
    """Refuse, before any work, an --out that is a file or holds a prepared corpus (without --force)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file, not a folder; choose another --out")
    if (out / "manifest.jsonl").exists() and not force:
        raise UserError(f"{out}: already holds a prepared corpus; pass --force to replace it")
    check_outputs([out / name for name in CORPUS_FILES], force, "--out")  # --force replaces only what we wrote


def write_prepared(out: Path, manifest: Manifest, protocol: Protocol) -> None:
    save_corpus(out, manifest, protocol)
    record_outputs([out / name for name in CORPUS_FILES])


def combine_to_dir(folders: list[str | Path], out: str | Path, labels: list[str] | None = None, seed: int = 0,
                   force: bool = False, within: str | None = None) -> tuple[Manifest, Protocol]:
    """``data.combine.combine_corpora`` written as a prepared corpus folder."""
    from copypaste_ser.data.combine import combine_corpora

    out = Path(out)
    check_prepared_out(out, force)
    manifest, protocol = combine_corpora(folders, labels, seed, within=within)
    write_prepared(out, manifest, protocol)
    return manifest, protocol

