"""scripts/choose_on_dev.py: the config with the best mean dev score becomes the test grid config."""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "choose_on_dev.py"


@pytest.fixture()
def choose(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("choose_on_dev", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _dev_config(root: Path, name: str, train: dict, dev_scores: dict[str, float]) -> Path:
    """A dev grid config under root/configs/dev and its finished runs' metrics and histories."""
    config = root / "configs" / "dev" / f"{name}.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump({"data": "../../data/corpus", "out": f"../../runs/{name}", "preset": "small",
                                      "train": train, "copypaste": ["none"], "seeds": [0, 1], "snrs": []}))
    for run, score in dev_scores.items():
        folder = root / "runs" / name / run.split("/")[0] / "scratch" / "clean" / "none" / run.split("/")[1]
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"dev_weighted_f1": score}))
        (folder / "history.jsonl").write_text(json.dumps({"dev_weighted_f1": score}) + "\n")
    return config


def test_the_best_mean_dev_score_is_chosen_and_written_as_the_test_grid(tmp_path, monkeypatch, choose, capsys):
    monkeypatch.chdir(tmp_path)
    # b has the single best run but the lower mean; c has no finished run and is passed over
    a = _dev_config(tmp_path, "a", {"lr": 0.001}, {"f1/seed-0": 0.80, "f1/seed-1": 0.78, "f2/seed-0": 0.70})
    b = _dev_config(tmp_path, "b", {"lr": 0.003, "width": 16}, {"f1/seed-0": 0.95, "f1/seed-1": 0.60, "f2/seed-0": 0.65})
    c = _dev_config(tmp_path, "c", {"lr": 0.01}, {})
    out = tmp_path / "configs" / "test.yaml"
    assert choose([str(a), str(b), str(c), "--out", str(out), "--grid-out", "../runs/test", "--seed", "0"]) == 0
    printed = capsys.readouterr().out
    assert "chosen: a.yaml" in printed and "dev wF1  76.00  (3 runs)" in printed and "(0 runs)" in printed
    written = yaml.safe_load(out.read_text())
    assert written["train"] == {"lr": 0.001} and written["copypaste"] == ["none", "n-cp"]
    assert written["seeds"] == [0] and written["out"] == "../runs/test" and written["baseline"] is False
    # paths are rewritten for the test config's own folder
    assert written["data"] == "../data/corpus" and written["noise_root"] == "../data/musan"
    assert out.read_text().startswith("# The test grid of a.yaml") and "a.yaml" in out.read_text().splitlines()[0]


def test_no_finished_dev_run_is_an_error_not_a_choice(tmp_path, monkeypatch, choose, capsys):
    monkeypatch.chdir(tmp_path)
    empty = _dev_config(tmp_path, "empty", {"lr": 0.001}, {})
    out = tmp_path / "configs" / "test.yaml"
    assert choose([str(empty), "--out", str(out), "--grid-out", "../runs/test"]) == 2
    assert "no dev config has finished runs" in capsys.readouterr().err and not out.exists()
