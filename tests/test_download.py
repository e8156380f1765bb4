"""download/extract/fetch_corpus against a loopback HTTP server serving archives built here."""

from __future__ import annotations

import functools
import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from copypaste_ser.data import download as dl
from copypaste_ser.errors import UserError


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1; yields (base_url, folder)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(QuietHandler, directory=str(www))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return path


CONTENT = {"corpus/a.txt": b"alpha", "corpus/sub/b.txt": b"beta" * 1000}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_and_extract_zip(server, tmp_path):
    url, www = server
    archive = make_zip(www / "data.zip", CONTENT)
    (tmp_path / "dl").mkdir()
    got = dl.download(f"{url}/data.zip", tmp_path / "dl", sha256=sha(archive).upper())
    assert got == tmp_path / "dl" / "data.zip" and got.read_bytes() == archive.read_bytes()
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["data.zip"]  # no temp file left
    out = dl.extract(got, tmp_path / "out")
    assert (out / "corpus" / "a.txt").read_bytes() == b"alpha"
    assert (out / "corpus" / "sub" / "b.txt").read_bytes() == b"beta" * 1000


def test_download_and_extract_tar_gz(server, tmp_path):
    url, www = server
    archive = make_tar(www / "data.tar.gz", CONTENT, links={"corpus/link.txt": "a.txt"})
    got = dl.download(f"{url}/data.tar.gz", tmp_path / "x" / "saved.tar.gz")
    assert got == tmp_path / "x" / "saved.tar.gz" and sha(got) == sha(archive)
    out = dl.extract(got, tmp_path / "out")
    assert (out / "corpus" / "sub" / "b.txt").read_bytes() == b"beta" * 1000
    assert (out / "corpus" / "link.txt").read_bytes() == b"alpha"  # in-tree link is fine


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    url, www = server
    make_zip(www / "data.zip", CONTENT)
    dest = tmp_path / "dl" / "data.zip"
    with pytest.raises(UserError, match="checksum mismatch") as e:
        dl.download(f"{url}/data.zip", dest, sha256="0" * 64)
    assert "\n" not in str(e.value)
    assert not dest.exists() and list((tmp_path / "dl").iterdir()) == []


def test_existing_file_kept_unless_force(server, tmp_path):
    url, www = server
    make_zip(www / "data.zip", CONTENT)
    dest = tmp_path / "data.zip"
    dest.write_bytes(b"old")
    assert dl.download(f"{url}/data.zip", dest).read_bytes() == b"old"
    assert dl.download(f"{url}/data.zip", dest, force=True).read_bytes() == (www / "data.zip").read_bytes()
    # a stale file whose checksum does not match is fetched again
    dest.write_bytes(b"old")
    assert dl.download(f"{url}/data.zip", dest, sha256=sha(www / "data.zip")).read_bytes() != b"old"


def test_http_error(server, tmp_path):
    url, _ = server
    with pytest.raises(UserError, match="missing.zip: download failed"):
        dl.download(f"{url}/missing.zip", tmp_path / "m.zip")
    assert not (tmp_path / "m.zip").exists()


def test_zip_traversal_refused(tmp_path):
    archive = make_zip(tmp_path / "evil.zip", {"ok.txt": b"ok", "../evil.txt": b"x"})
    with pytest.raises(UserError, match=r"refusing member '\.\./evil\.txt'"):
        dl.extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "ok.txt").exists()
    absolute = make_zip(tmp_path / "abs.zip", {"/etc/evil": b"x"})
    with pytest.raises(UserError, match="refusing member"):
        dl.extract(absolute, tmp_path / "out")


def test_tar_traversal_refused(tmp_path):
    archive = make_tar(tmp_path / "evil.tar.gz", {"ok.txt": b"ok", "a/../../evil.txt": b"x"})
    with pytest.raises(UserError, match="refusing member 'a/../../evil.txt'"):
        dl.extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "ok.txt").exists()
    link = make_tar(tmp_path / "link.tar.gz", {}, links={"escape": "../../etc/passwd"})
    with pytest.raises(UserError, match="refusing link member 'escape'"):
        dl.extract(link, tmp_path / "out2")
    assert not (tmp_path / "out2" / "escape").exists()


def test_extract_bad_inputs(tmp_path):
    (tmp_path / "x.rar").write_bytes(b"rar")
    with pytest.raises(UserError, match="unsupported archive type"):
        dl.extract(tmp_path / "x.rar", tmp_path / "out")
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="broken.zip: not a readable archive"):
        dl.extract(tmp_path / "broken.zip", tmp_path / "out")


def test_fetch_corpus(server, tmp_path, monkeypatch):
    url, www = server
    archive = make_tar(www / "tiny.tar.gz", CONTENT)
    monkeypatch.setitem(dl.KNOWN_CORPORA, "tiny", (f"{url}/tiny.tar.gz", sha(archive)))
    out = dl.fetch_corpus("tiny", tmp_path / "corpora")
    assert (out / "corpus" / "a.txt").read_bytes() == b"alpha"
    assert (out / "tiny.tar.gz").is_file()


def test_fetch_corpus_known_urls_and_refusals(tmp_path):
    assert set(dl.KNOWN_CORPORA) >= {"emodb", "ravdess", "musan", "librispeech-test-other"}
    for name in ("crema-d", "iemocap", "msp-podcast"):
        with pytest.raises(UserError, match="cannot be downloaded automatically.*https://"):
            dl.fetch_corpus(name, tmp_path)
    with pytest.raises(UserError, match="unknown corpus 'nope'.*emodb"):
        dl.fetch_corpus("nope", tmp_path)
    assert list(tmp_path.iterdir()) == []
