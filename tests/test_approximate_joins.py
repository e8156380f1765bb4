"""``copypaste_join: cached-states`` (issue 35): CopyPaste on frozen encoder states without
re-encoding, an approximation that is named so wherever it is used and refused where it means
nothing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from copypaste_ser.augment.copypaste import CopyPaste
from copypaste_ser.augment.pipeline import training_augmentation
from copypaste_ser.augment.reencode import ReencodeConcatenations
from copypaste_ser.errors import UserError
from copypaste_ser.training.config import check_applicable, make_config

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    from conftest import save_tiny_whisper
    return save_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper-joins"), seed=0)


def whisper_config(model, **options):
    return make_config("tiny", init="whisper-attention", encoder_model=str(model), encoder_layer=2, **options)


def test_approximate_joins_are_the_pieces_cached_rows_side_by_side(tiny_whisper):
    cfg = whisper_config(tiny_whisper, copypaste="se-cp", copypaste_join="cached-states", copypaste_p=1.0)
    check_applicable(cfg)
    step = training_augmentation(cfg, neutral_index=None, source="cfg")
    assert isinstance(step, CopyPaste)  # no encoder anywhere in the step: nothing is re-encoded
    rng = np.random.default_rng(0)
    width = cfg.feature_config.input_dim + 64
    items = [rng.normal(size=(n, width)).astype(np.float32) for n in (30, 40, 35, 50)]
    out, labels = step(items, [1, 1, 2, 2])
    joined = [(k, e) for k, e in enumerate(step.last_plan.entries) if len(e.sources) > 1]
    assert joined
    for k, entry in joined:
        pieces = [items[s][start:start + n] for s, (start, n) in zip(entry.sources, entry.pieces)]
        np.testing.assert_array_equal(out[k], np.concatenate(pieces))
        assert labels[k] == [1, 1, 2, 2][entry.anchor]
    exact = training_augmentation(whisper_config(tiny_whisper, copypaste="se-cp"), None, "cfg")
    assert isinstance(exact, ReencodeConcatenations)  # the default stays exact


def test_approximate_joins_are_named_in_run_folders_and_no_cp_cells_stay_exact(tmp_path, synthetic_corpus):
    from copypaste_ser.experiments.grid_config import GridConfig, cell_config, cells

    def grid(join: str):
        cfg = tmp_path / f"{join}.yaml"
        cfg.write_text(f"data: {synthetic_corpus}\nout: {tmp_path / join}\npreset: tiny\n"
                       f"train: {{copypaste_join: {join}, epochs: 1}}\ninit: [resemblyzer-attention]\n"
                       f"copypaste: [none, n-cp]\ntraining_data: [clean]\nseeds: [0]\nfolds: [default]\nsnrs: []\n")
        g = GridConfig.load(cfg)
        return g, {c.copypaste: c for c in cells(g)}

    approx, approx_cells = grid("cached-states")
    exact, exact_cells = grid("exact")
    assert approx_cells["n-cp"].init_name == "resemblyzer-attention+approx-joins"
    assert approx_cells["n-cp"].path(tmp_path).parts[-4] == "resemblyzer-attention+approx-joins"
    assert cell_config(approx, approx_cells["n-cp"]).copypaste_join == "cached-states"
    # a No CP cell joins nothing: the same name and the same config as the exact grid's, so it is reused
    assert approx_cells["none"].init_name == exact_cells["none"].init_name == "resemblyzer-attention"
    assert cell_config(approx, approx_cells["none"]) == cell_config(exact, exact_cells["none"])
    assert exact_cells["n-cp"].init_name == "resemblyzer-attention"


def test_speaker_normalised_states_may_be_joined_only_approximately(tiny_whisper):
    check_applicable(whisper_config(tiny_whisper, copypaste="n-cp", copypaste_join="cached-states",
                                    speaker_norm="speaker"))
    with pytest.raises(UserError, match="--copypaste-join cached-states"):
        check_applicable(whisper_config(tiny_whisper, copypaste="n-cp", speaker_norm="speaker"))


@pytest.mark.parametrize("args, message", [
    (["--copypaste", "n-cp", "--copypaste-join", "cached-states"],
     "copypaste_join: cached-states applies to models on frozen encoder states"),
    (["--init", "resemblyzer-attention", "--copypaste-join", "cached-states"],
     "copypaste_join: cached-states changes how CopyPaste joins items, and copypaste is none"),
    (["--copypaste-join", "states"], "--copypaste-join"),
])
def test_approximate_joins_where_they_mean_nothing_are_one_line(synthetic_corpus, tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "copypaste_ser", "train", "--data", str(synthetic_corpus),
                           "--preset", "tiny", "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet", *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "r").exists()


def test_a_run_with_approximate_joins_trains_and_records_them(tiny_whisper, synthetic_corpus, tmp_path):
    import yaml

    proc = subprocess.run([sys.executable, "-m", "copypaste_ser", "train", "--data", str(synthetic_corpus),
                           "--init", "whisper-attention", "--encoder-model", str(tiny_whisper), "--encoder-layer", "2",
                           "--preset", "tiny", "--epochs", "1", "--copypaste", "n-cp", "--copypaste-join",
                           "cached-states", "--out", str(tmp_path / "r"), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert (saved["copypaste"], saved["copypaste_join"]) == ("n-cp", "cached-states")
    assert (tmp_path / "r" / "model.pt").is_file()
