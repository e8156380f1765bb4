"""Download and unpack the freely available corpora.

``download`` streams a URL to a temporary file next to the destination (with a tqdm
progress bar on a terminal), checks an optional SHA-256 and renames it into place, so an
interrupted download never leaves a file that looks complete. ``extract`` unpacks .zip,
.tar, .tar.gz/.tgz archives after checking that no member would land outside the target
folder (absolute names, ``..``, links pointing out, device files are refused).
``fetch_corpus`` does both for the corpora in ``KNOWN_CORPORA``; CREMA-D, IEMOCAP and
MSP-Podcast need a licence or Git LFS, so it says where to get them instead.
"""

from __future__ import annotations

import hashlib
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from copypaste_ser.errors import UserError
from copypaste_ser.files.atomic import atomic_path

#: name -> (url, sha256 or None when not pinned)
KNOWN_CORPORA: dict[str, tuple[str, str | None]] = {
    "emodb": ("http://emodb.bilderbar.info/download/download.zip", None),
    "ravdess": ("https://zenodo.org/record/1188976/files/Audio_Speech_Actors_01-24.zip", None),
    "musan": ("https://www.openslr.org/resources/17/musan.tar.gz", None),
    "librispeech-test-other": ("https://www.openslr.org/resources/12/test-other.tar.gz", None),
}

#: corpora that cannot be downloaded automatically: name -> where to get them
LICENSED_CORPORA: dict[str, str] = {
    "crema-d": "clone https://github.com/CheyneyComputerScience/CREMA-D with Git LFS "
               "(git lfs install; git clone ...) and pass its folder (AudioWAV/ inside)",
    "iemocap": "request the IEMOCAP release at https://sail.usc.edu/iemocap/ (licence form) "
               "and pass the IEMOCAP_full_release folder",
    "msp-podcast": "request MSP-Podcast (Release 1.4) at "
                   "https://ecs.utdallas.edu/research/researchgroups/msp/MSP-Podcast.html "
                   "(academic licence) and pass the folder holding Audios/ and Labels/",
}

CHUNK = 1 << 20


def _filename_from_url(url: str) -> str:
    name = PurePosixPath(urllib.parse.urlparse(url).path).name
    return name or "download"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str | None = None, force: bool = False,
             progress: bool | None = None) -> Path:
    """Fetch ``url`` to ``dest`` (a file path, or an existing folder to put the URL's file
    name in) and return the file's path. An existing file is kept unless ``force`` (or its
    checksum does not match ``sha256``). ``progress=None`` shows a bar only on a terminal."""
    dest = Path(dest).expanduser()
    if dest.is_dir():
        dest = dest / _filename_from_url(url)
    expected = sha256.lower() if sha256 else None
    if dest.is_file() and not force:
        if expected is None or sha256_of(dest) == expected:
            return dest
    h = hashlib.sha256()
    with atomic_path(dest, suffix=".part") as tmp:
        with open(tmp, "wb") as out:
            try:
                resp = urllib.request.urlopen(url, timeout=60)
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise UserError(f"{url}: download failed ({getattr(e, 'reason', e)})") from None
            with resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                bar = _progress_bar(total, dest.name, progress)
                try:
                    while True:
                        try:
                            block = resp.read(CHUNK)
                        except OSError as e:
                            raise UserError(f"{url}: download interrupted ({e})") from None
                        if not block:
                            break
                        out.write(block)
                        h.update(block)
                        if bar is not None:
                            bar.update(len(block))
                finally:
                    if bar is not None:
                        bar.close()
        if expected is not None and h.hexdigest() != expected:
            raise UserError(f"{url}: checksum mismatch (sha256 {h.hexdigest()}, expected {expected}); "
                            f"the file was not saved to {dest}")
    return dest


def _progress_bar(total: int | None, name: str, progress: bool | None):
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name)


# ---------------------------------------------------------------- extraction
def _inside(base: Path, name: str) -> bool:
    if not name or name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() \
            or (len(name) > 1 and name[1] == ":"):
        return False
    target = (base / name).resolve()
    return target == base or base in target.parents


def _archive_kind(archive: Path) -> str:
    name = archive.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")):
        return "tar"
    raise UserError(f"{archive}: unsupported archive type (expected .zip, .tar, .tar.gz or .tgz)")


def extract(archive: Path, dest_dir: Path) -> Path:
    """Unpack ``archive`` into ``dest_dir`` and return ``dest_dir``. The whole archive is
    checked first; nothing is written when any member would escape ``dest_dir``."""
    archive = Path(archive)
    if not archive.is_file():
        raise UserError(f"{archive}: archive does not exist")
    kind = _archive_kind(archive)
    dest_dir = Path(dest_dir).expanduser()
    dest_dir.mkdir(parents=True, exist_ok=True)
    base = dest_dir.resolve()
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if not _inside(base, info.filename.replace("\\", "/")):
                        raise UserError(f"{archive}: refusing member {info.filename!r}: it would be "
                                        f"written outside {dest_dir}")
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise UserError(f"{archive}: refusing symbolic link member {info.filename!r}")
                zf.extractall(base)
        else:
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for m in members:
                    if not _inside(base, m.name):
                        raise UserError(f"{archive}: refusing member {m.name!r}: it would be "
                                        f"written outside {dest_dir}")
                    if m.issym() or m.islnk():
                        link_base = (base / m.name).parent if m.issym() else base
                        if PurePosixPath(m.linkname).is_absolute() or not _inside_from(base, link_base, m.linkname):
                            raise UserError(f"{archive}: refusing link member {m.name!r} -> "
                                            f"{m.linkname!r}: it points outside {dest_dir}")
                    elif not (m.isfile() or m.isdir()):
                        raise UserError(f"{archive}: refusing special member {m.name!r} "
                                        f"(device, fifo or other non-regular file)")
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(base, members=members, filter="data")
                else:  # pragma: no cover - Python < 3.11.4
                    tf.extractall(base, members=members)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
        raise UserError(f"{archive}: not a readable archive ({e})") from None
    return dest_dir


def _inside_from(base: Path, start: Path, rel: str) -> bool:
    target = (start / rel).resolve()
    return target == base or base in target.parents


# ---------------------------------------------------------------- corpora
def fetch_corpus(name: str, dest: Path, force: bool = False, keep_archive: bool = True) -> Path:
    """Download and unpack a freely available corpus into ``dest``; return ``dest``."""
    key = name.strip().lower().replace("_", "-")
    if key in LICENSED_CORPORA:
        raise UserError(f"{name}: cannot be downloaded automatically; {LICENSED_CORPORA[key]}")
    if key not in KNOWN_CORPORA:
        raise UserError(f"unknown corpus {name!r} to fetch: choose one of {', '.join(KNOWN_CORPORA)} "
                        f"(licensed, fetch by hand: {', '.join(LICENSED_CORPORA)})")
    url, sha = KNOWN_CORPORA[key]
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise UserError(f"{dest}: is a file, not a folder; choose another --out")
    dest.mkdir(parents=True, exist_ok=True)
    archive = download(url, dest / _filename_from_url(url), sha256=sha, force=force)
    extract(archive, dest)
    if not keep_archive:
        archive.unlink()
    return dest


__all__ = ["KNOWN_CORPORA", "LICENSED_CORPORA", "download", "extract", "fetch_corpus", "sha256_of"]
