"""Model files that cannot give honest answers are refused in one line (issue 33): NaN or
infinite weights, labels that do not match the output layer or the checksum, no weights, and a
model folder whose model.onnx was exported from other weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from test_output_policy import corpus, refused  # noqa: F401  (the module's fixture)


def _tampered(corpus: dict, tmp_path: Path, change) -> Path:
    obj = torch.load(corpus["run"] / "model.pt", weights_only=True)
    change(obj)
    path = tmp_path / "model.pt"
    torch.save(obj, path)
    return path


def _nan(obj):
    name = next(k for k, v in obj["state_dict"].items() if v.is_floating_point() and v.numel())
    obj["state_dict"][name].view(-1)[0] = float("nan")


def _swap_labels(obj):
    obj["labels"] = obj["labels"][::-1]


def _short_labels(obj):
    obj["labels"] = obj["labels"][:-1]
    obj.pop("checksum")


def _no_weights(obj):
    obj.pop("state_dict")


def _flip_a_weight(obj):
    name = next(k for k, v in obj["state_dict"].items() if v.is_floating_point() and v.numel())
    obj["state_dict"][name].view(-1)[0] += 1.0


@pytest.mark.parametrize("change, expect", [
    (_nan, "hold NaN or infinite values"),
    (_swap_labels, "weights or labels differ from the checksum"),
    (_flip_a_weight, "weights or labels differ from the checksum"),
    (_short_labels, "names 3 labels but its output layer has 4"),
    (_no_weights, "holds no weights"),
])
def test_a_damaged_model_file_is_refused_in_one_line(corpus, tmp_path, change, expect):  # noqa: F811
    model = _tampered(corpus, tmp_path, change)
    refused(["predict", model, corpus["wav"]], expect, tmp_path)


def test_a_stale_model_onnx_is_refused_with_the_export_command(tmp_path):
    from copypaste_ser.inference.pretrained import DEFAULT_DIR, load_model_dir
    from copypaste_ser.models.checkpoint import content_checksum

    if not (DEFAULT_DIR / "model.onnx").is_file():
        pytest.skip("the default model's ONNX export is made by `make install`")
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_DIR, folder)
    from safetensors.torch import load_file, save_file
    state = load_file(str(folder / "model.safetensors"))
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name] * 1.01  # retrained weights, old export beside them
    save_file(state, str(folder / "model.safetensors"))
    meta = json.loads((folder / "model.json").read_text())
    meta["checksum"] = content_checksum({**meta, "state_dict": state})
    (folder / "model.json").write_text(json.dumps(meta))
    wav = next(Path(__file__).resolve().parents[2].glob("shared/data/emodb-full/wav/*.flac"), None)
    if wav is None:
        import numpy as np

        from copypaste_ser.data.audio import write_audio
        wav = tmp_path / "a.wav"
        write_audio(wav, 0.1 * np.random.default_rng(0).standard_normal(32000).astype(np.float32))
    refused(["predict", folder, wav], "model.onnx: was exported from other weights", tmp_path)


def test_predict_threads_sets_the_thread_count_and_refuses_zero(corpus, tmp_path):  # noqa: F811
    from test_bad_input import run_cli

    before = torch.get_num_threads()
    try:
        code, out = run_cli(["predict", str(corpus["run"]), str(corpus["wav"]), "--threads", "1"])
        assert code == 0 and torch.get_num_threads() == 1, out
    finally:
        torch.set_num_threads(before)
    refused(["predict", corpus["run"], corpus["wav"], "--threads", "0"], "--threads: must be an integer >= 1", tmp_path)


def test_a_file_size_limit_is_one_line_naming_the_file_and_the_run_is_marked_failed(corpus, tmp_path):  # noqa: F811
    import resource
    import subprocess
    import sys

    def limit():  # 64 KB: config.yaml and run.json fit, a checkpoint does not
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "copypaste_ser", "train", "--data", str(corpus["data"]),
                           "--preset", "tiny", "--epochs", "1", "--threads", "1", "--quiet", "--out", str(run)],
                          capture_output=True, text=True, timeout=300, preexec_fn=limit)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {run}/") and ".pt: cannot write it" in lines[0] and ".tmp" not in lines[0]
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert not list(run.glob(".*.tmp"))
