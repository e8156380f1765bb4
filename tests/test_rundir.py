"""Run folders: --force deletes only what the tool wrote, never a user's folder; the training lock."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from copypaste_ser.errors import UserError
from copypaste_ser.training.config import make_config
from copypaste_ser.training.loop import train, train_seeds
from copypaste_ser.training.rundir import LOCK, MARKER, folder_kind, run_lock


def _cfg(data, **kw):
    kw.setdefault("epochs", 1)
    return make_config("tiny", data=str(data), threads=1, **kw)


def _snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _user_folder(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes")
    (folder / "config.yaml").write_text("mine: true\n")  # a run's file name, but not a run
    (folder / "sub" / "model.pt").write_bytes(b"my model")
    return folder


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "copypaste_ser", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


@pytest.mark.parametrize("force", [False, True])
def test_a_user_folder_is_refused_in_one_line_and_kept(synthetic_corpus, tmp_path, force):
    mine = _user_folder(tmp_path / "mydir")
    before = _snapshot(mine)
    proc = _cli("train", "--data", str(synthetic_corpus), "--out", str(mine), "--preset", "tiny", "--epochs", "1",
                "--quiet", *(["--force"] if force else []))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0] == f"error: {mine}: is not a copypaste-ser run folder; choose another --out"
    assert _snapshot(mine) == before


def test_force_on_the_current_folder_deletes_nothing(synthetic_corpus, tmp_path, monkeypatch):
    mine = _user_folder(tmp_path / "cwd")
    before = _snapshot(mine)
    proc = _cli("train", "--data", str(synthetic_corpus), "--out", ".", "--preset", "tiny", "--force", cwd=mine)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "choose another --out" in proc.stderr
    assert _snapshot(mine) == before
    # even where the current folder carries the marker: "." and its parents are never replaced
    (mine / MARKER).write_text(json.dumps({"kind": "run"}))
    (mine / "sub" / MARKER).write_text(json.dumps({"kind": "run"}))
    before = _snapshot(mine)
    monkeypatch.chdir(mine / "sub")
    for out in (".", "..", str(mine)):
        with pytest.raises(UserError, match="is the current folder or one of its parents; --force never"):
            train(_cfg(synthetic_corpus), out, force=True, progress=False)
    assert _snapshot(mine) == before


def test_force_never_replaces_home_or_a_folder_holding_the_corpus(synthetic_corpus, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / MARKER).write_text(json.dumps({"kind": "run"}))
    (home / ".bashrc").write_text("# mine")
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(UserError, match="is your home folder"):
        train(_cfg(synthetic_corpus), home, force=True, progress=False)
    run = tmp_path / "run"
    shutil.copytree(synthetic_corpus, run / "data", ignore=shutil.ignore_patterns("features"))
    (run / MARKER).write_text(json.dumps({"kind": "run"}))
    before = _snapshot(tmp_path)
    with pytest.raises(UserError, match=r"is the corpus folder .* or holds it"):
        train(_cfg(run / "data"), run, force=True, progress=False)
    assert _snapshot(tmp_path) == before


def test_an_out_that_is_a_file_is_one_line(synthetic_corpus, tmp_path):
    (tmp_path / "f").write_text("x")
    proc = _cli("train", "--data", str(synthetic_corpus), "--out", str(tmp_path / "f"), "--preset", "tiny",
                "--force")
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {tmp_path / 'f'}: is a file, not a folder; " \
                                                            "choose another --out", proc.stderr
    assert (tmp_path / "f").read_text() == "x"


def test_force_retrains_a_run_and_keeps_the_users_files(synthetic_corpus, tmp_path):
    run = tmp_path / "run"
    train(_cfg(synthetic_corpus), run, progress=False)
    assert json.loads((run / MARKER).read_text())["kind"] == "run"
    (run / "notes.txt").write_text("mine")
    (run / "eval" / "clean").mkdir(parents=True)
    (run / "eval" / "clean" / "metrics.json").write_text("{}")
    (run / "eval" / "clean" / "mine.txt").write_text("mine too")
    (run / ".last.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    with pytest.raises(UserError, match="already complete"):
        train(_cfg(synthetic_corpus), run, progress=False)
    train(_cfg(synthetic_corpus), run, force=True, progress=False)
    assert (run / "notes.txt").read_text() == "mine" and (run / "eval" / "clean" / "mine.txt").is_file()
    assert not (run / "eval" / "clean" / "metrics.json").exists()  # the tool's own, replaced
    assert not list(run.glob("*.tmp"))
    assert [json.loads(x)["epoch"] for x in (run / "history.jsonl").read_text().splitlines()] == [1]
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


def test_a_users_folder_that_looks_like_a_run_is_refused_and_left_byte_identical(synthetic_corpus, tmp_path):
    run = tmp_path / "old"
    train(_cfg(synthetic_corpus), run, progress=False)
    (run / MARKER).unlink()  # the user's own folder: the tool's file names, no marker
    (run / LOCK).unlink()
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert folder_kind(run) is None
    for force in (False, True):
        with pytest.raises(UserError, match="is not a copypaste-ser run folder"):
            train(_cfg(synthetic_corpus), run, force=force, progress=False)
        assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # no marker, nothing replaced
    assert folder_kind(tmp_path) is None and folder_kind(tmp_path / "missing") == ""


def test_force_on_several_seeds_clears_only_the_tool_files(synthetic_corpus, tmp_path):
    out = tmp_path / "seeds"
    train_seeds(_cfg(synthetic_corpus), out, seeds=[0, 1], progress=False)
    assert folder_kind(out) == "seeds"
    (out / "notes.txt").write_text("mine")
    (out / "seed-0" / "notes.txt").write_text("mine")
    (out / "seed-7").mkdir()
    (out / "seed-7" / "data.csv").write_text("mine")
    summary = train_seeds(_cfg(synthetic_corpus), out, seeds=[0, 1], force=True, progress=False)
    assert len(summary["runs"]) == 2
    for f in ("notes.txt", "seed-0/notes.txt", "seed-7/data.csv"):
        assert (out / f).read_text() == "mine", f
    with pytest.raises(UserError, match="is a copypaste-ser seeds folder, not a run folder"):
        train(_cfg(synthetic_corpus), out, force=True, progress=False)


def test_a_second_trainer_of_the_same_run_is_refused(synthetic_corpus, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from copypaste_ser.training.rundir import run_lock\n"
         f"with run_lock({str(run)!r}):\n    print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError) as err:
            train(_cfg(synthetic_corpus), run, progress=False)
        assert str(err.value).startswith(f"{run}: is being trained by another process (pid {holder.pid})")
        assert not (run / "history.jsonl").exists()
    finally:
        holder.communicate("", timeout=30)
    (run / ".history.jsonl.x1y2.tmp").write_text("{")  # a leftover of a crash, removed on reopening
    train(_cfg(synthetic_corpus), run, progress=False)
    assert (run / "model.pt").is_file() and not list(run.glob("*.tmp"))
    with run_lock(run):  # released when train returned
        pass


def test_demo_force_clears_only_what_the_demo_wrote(tmp_path):
    from copypaste_ser.training.rundir import claim

    demo = tmp_path / "demo-out"
    files = {"synthetic-audio/.complete": "", "synthetic-audio/spk0/a.wav": "audio",
             "runs/none/summary.json": "{}", "runs/none/seed-0/model.pt": "model",
             "runs/none/seed-0/config.yaml": "{}", "runs/n-cp/seed-0/model.pt": "model",
             "notes.txt": "mine", "runs/none/seed-0/notes.txt": "mine"}
    for name, text in files.items():
        (demo / name).parent.mkdir(parents=True, exist_ok=True)
        (demo / name).write_text(text)
    for folder, kind in (("", "demo"), ("runs/none", "seeds"), ("runs/n-cp", "seeds"),
                         ("runs/none/seed-0", "run"), ("runs/n-cp/seed-0", "run")):
        (demo / folder / MARKER).write_text(json.dumps({"kind": kind}))
    claim(demo, "demo", force=True)
    left = {str(p.relative_to(demo)) for p in demo.rglob("*") if p.is_file()}
    assert left == {MARKER, "notes.txt", "synthetic-audio/spk0/a.wav", "runs/none/seed-0/notes.txt",
                    f"runs/none/{MARKER}", f"runs/none/seed-0/{MARKER}", f"runs/none/seed-0/{LOCK}"}
    with pytest.raises(UserError, match="is not a copypaste-ser run folder"):
        claim(_user_folder(tmp_path / "mine"), "demo", force=True)


def test_a_grid_run_folder_is_one_layout_and_names_cannot_climb_out(tmp_path):
    from copypaste_ser.experiments.grid_config import Cell
    from copypaste_ser.training.rundir import grid_run_dir

    cell = Cell("kfold-2", "whisper", "clean", "n-cp", 1)
    assert cell.path(tmp_path) == tmp_path / "kfold-2" / "whisper" / "clean" / "n-cp" / "seed-1"
    # a results row's names (strings, the init with its suffixes) find the same folder
    assert grid_run_dir(tmp_path, "kfold-2", cell.init_name, "clean", "n-cp", "1") == cell.path(tmp_path)
    for bad in (dict(fold=".."), dict(init="a/b"), dict(seed="1/../../x")):
        names = dict(fold="kfold-2", init="whisper", data="clean", scheme="n-cp", seed=1) | bad
        with pytest.raises(UserError, match="fold name|init name|seed"):
            grid_run_dir(tmp_path, *names.values())
