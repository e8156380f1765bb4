"""Where a model comes from, and the engines (PyTorch, ONNX Runtime) that score windows.

A model source is a run folder or ``model.pt`` (checkpoint.py), a folder in the shipped
format (pretrained/), an ``.onnx`` file made by ``copypaste-ser export``, or None for the
default model shipped in the package.

Padding never changes a window's score. The thin ResNet's convolutions see zero padding,
so its windows are batched only with windows of the same length; the Resemblyzer models
(causal LSTM, pooling masked to the valid frames) are exact under end padding, so their
windows are padded to the longest of a length-sorted batch.

torch is imported only where a PyTorch model is built or run: a model folder that carries its
ONNX export (the shipped default does) predicts on onnxruntime and numpy alone.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from copypaste_ser.errors import UserError
from copypaste_ser.features.mfcc import FeatureConfig

if TYPE_CHECKING:
    import torch

#: Architectures whose score of a window does not depend on padding after it.
PAD_EXACT = ("resemblyzer-attention", "resemblyzer-lstm", "whisper-attention")
#: "auto": onnx where the model comes with an ONNX file (a .onnx path, model.onnx in a model
#: folder such as the shipped default), else torch.
ENGINES = ("auto", "torch", "onnx")
#: ONNX metadata key holding the model file's description (labels, features, arch).
META_KEY = "copypaste_ser"


@dataclass
class Bundle:
    """A loaded model with what predicting needs to know about it."""

    labels: list[str]
    features: FeatureConfig
    arch: str
    source: str
    meta: dict = field(default_factory=dict)     # the model file without its weights
    loaded: torch.nn.Module | None = None         # the PyTorch model, once built
    onnx_path: Path | None = None
    loader: Callable[[], Any] | None = None       # builds the PyTorch model on first use

    @property
    def model(self) -> torch.nn.Module | None:
        """The PyTorch model (None for an .onnx source), built on first use: a folder predicted
        through its ONNX graph never loads its weights into torch."""
        if self.loaded is None and self.loader is not None:
            self.loaded, self.loader = self.loader(), None
        return self.loaded

    @property
    def input_dim(self) -> int:
        """Values per frame the model takes (the states models take mel and encode it)."""
        return self.features.input_dim

    @property
    def same_length(self) -> bool:
        return self.arch not in PAD_EXACT


def load_bundle(source: str | Path | None, with_onnx: bool = True) -> Bundle:
    """Load a model from any source (None: the default model shipped in the package);
    ``with_onnx``: also take the ONNX export a model folder carries (checked against the
    folder's weights when its session opens, :class:`OnnxEngine`)."""
    from copypaste_ser.inference.pretrained import DEFAULT_DIR, ONNX, is_model_dir, read_model_meta

    if source is not None and Path(source).suffix == ".onnx":
        return _onnx_bundle(Path(source))
    if source is None or is_model_dir(source):
        folder = DEFAULT_DIR if source is None else Path(source)
        meta = read_model_meta(folder)
        name = "default model" if source is None else str(folder)
        onnx_file = folder / ONNX if with_onnx and (folder / ONNX).is_file() else None
        return _bundle(meta, name, onnx_file, loader=lambda: _torch_model(folder, name))
    from copypaste_ser.models.checkpoint import load_model_file, resolve_model_path
    from copypaste_ser.models.scoring import model_from_file
    path = resolve_model_path(source)
    obj = load_model_file(path, kind="emotion")
    bundle = _bundle({k: v for k, v in obj.items() if k != "state_dict"}, str(path))
    bundle.loaded = model_from_file(obj, str(path))
    return bundle


def _bundle(meta: dict, name: str, onnx_path: Path | None = None, loader: Callable[[], Any] | None = None) -> Bundle:
    return Bundle(list(meta["labels"]), FeatureConfig.from_dict(meta["features"]), meta["model"]["arch"], name,
                  meta, onnx_path=onnx_path, loader=loader)


def _torch_model(folder: Path, name: str):
    """A model folder's weights as a PyTorch model (needs torch and safetensors)."""
    from copypaste_ser.inference.pretrained import ONNX, load_model_dir

    try:
        import safetensors  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise UserError(f"{name}: predicting without its ONNX graph ({folder / ONNX}) needs torch: pip "
                        f"install 'copypaste-ser[train]', or install a wheel built after `make install` "
                        f"(which exports it)") from None
    from copypaste_ser.models.scoring import model_from_file
    return model_from_file(load_model_dir(folder), name)


def check_onnx_matches(session, path: Path, checksum: str | None) -> None:
    """A folder's model.onnx must be the export of the weights beside it (same checksum)."""
    raw = session.get_modelmeta().custom_metadata_map.get(META_KEY)
    exported = json.loads(raw).get("checksum") if raw else None
    if checksum is not None and exported != checksum:
        raise UserError(f"{path}: was exported from other weights than {path.parent} holds (stale); export it "
                        f"again: copypaste-ser export {path.parent} --onnx {path} --force")


def _onnx_bundle(path: Path) -> Bundle:
    session = onnx_session(path)
    raw = session.get_modelmeta().custom_metadata_map.get(META_KEY)
    if raw is None:
        raise UserError(f"{path}: not made by `copypaste-ser export` (no {META_KEY!r} metadata)")
    meta = json.loads(raw)
    outputs = ((meta.get("model") or {}).get("config") or {}).get("num_classes")
    if not isinstance(meta.get("labels"), list) or (isinstance(outputs, int) and outputs != len(meta["labels"])):
        raise UserError(f"{path}: its label list does not match its output layer ({outputs} outputs); "
                        f"export the model again")
    return _bundle(meta, str(path), onnx_path=path)


def onnx_session(path: Path, threads: int | None = None):
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("the onnx engine needs onnxruntime: pip install onnxruntime") from None
    if not path.is_file():
        raise UserError(f"{path}: ONNX model file is missing")
    opts = ort.SessionOptions()
    # as many threads as torch uses (OMP_NUM_THREADS): fair comparisons, polite on shared machines
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # a foreign or damaged file
        raise UserError(f"{path}: not a readable ONNX model ({type(e).__name__})") from None


def default_threads() -> int:
    """Threads an engine uses unless told: torch's where torch is loaded, else OMP_NUM_THREADS,
    else 0 (onnxruntime's own choice: one per core)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else 0


def batches(lengths: Sequence[int], batch_size: int, same_length: bool) -> Iterator[list[int]]:
    """Indices grouped into batches of at most ``batch_size``, sorted by length (less padding);
    with ``same_length`` a batch holds one length only."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    group: list[int] = []
    for i in order:
        if group and (len(group) == batch_size or (same_length and lengths[i] != lengths[group[0]])):
            yield group
            group = []
        group.append(i)
    if group:
        yield group


def pad(feats: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad (already normalised) windows to the longest: ``(B, T, F)`` and lengths ``(B,)``."""
    lengths = np.array([len(f) for f in feats], dtype=np.int64)
    out = np.zeros((len(feats), int(lengths.max()), feats[0].shape[1]), np.float32)
    for i, f in enumerate(feats):
        out[i, : len(f)] = f
    return out, lengths


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Engine:
    """Scores windows: ``engine(list of (T_i, F) arrays) -> (N, classes)`` probabilities."""

    def __init__(self, bundle: Bundle, batch_size: int = 32):
        self.bundle = bundle
        self.batch_size = batch_size
        # a shipped model's calibration (evaluation/calibration.py); 1 leaves the logits as trained
        self.temperature = float(bundle.meta.get("temperature", 1.0))

    def logits(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, feats: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(feats), len(self.bundle.labels)), np.float64)
        for idx in batches([len(f) for f in feats], self.batch_size, self.bundle.same_length):
            x, lengths = pad([feats[i] for i in idx])
            out[idx] = softmax(self.logits(x, lengths) / self.temperature)
        return out


class TorchEngine(Engine):
    def __init__(self, bundle: Bundle, batch_size: int = 32, device: str = "cpu"):
        import torch

        super().__init__(bundle, batch_size)
        self.device = torch.device(device)
        assert bundle.model is not None
        self.model = bundle.model.to(self.device).eval()

    def logits(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        import torch

        xt, lt = torch.from_numpy(x).to(self.device), torch.from_numpy(lengths).to(self.device)
        check = getattr(self.model, "check_input", None)
        if check is not None:  # validation lives outside forward (export), so it is called here
            check(xt, lt)
        with torch.no_grad():
            return self.model(xt, lt).float().cpu().numpy()


class OnnxEngine(Engine):
    def __init__(self, bundle: Bundle, path: Path, batch_size: int = 32, threads: int | None = None):
        super().__init__(bundle, batch_size)
        self.session = onnx_session(path, threads)
        if path == bundle.onnx_path and bundle.loader is not None:  # a model folder's own export
            check_onnx_matches(self.session, path, bundle.meta.get("checksum"))

    def logits(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], {"feats": x, "lengths": lengths})[0]


def check_device(device: str) -> None:
    """``--device``: cpu, cuda or cuda:N, and only where it exists."""
    if device == "cpu":
        return
    try:
        import torch
    except ImportError:
        raise UserError(f"--device {device}: needs torch (pip install 'copypaste-ser[train]'); "
                        f"or use --device cpu") from None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"--device: must be cpu, cuda or cuda:N, not {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available here; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"--device: must be cpu, cuda or cuda:N, not {device!r}")
