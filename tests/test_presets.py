"""One preset table: a preset means the same model whichever door it is opened by, and a config
file that sets one feature option keeps the preset's other feature options."""

import pytest

from copypaste_ser.models import ModelConfig
from copypaste_ser.training.config import PRESETS, make_config


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_preset_gives_the_same_width_to_the_model_and_to_training(preset):
    cfg = make_config(preset)
    assert ModelConfig.from_preset(preset, 4, **({"width": cfg.width} if cfg.width else {})).width == \
        ModelConfig.from_preset(preset, 4).width


def test_a_features_mapping_in_a_config_merges_into_the_presets_features(tmp_path):
    config = tmp_path / "opts.yaml"
    config.write_text("features: {vad: false}\n")
    cfg = make_config("small", config)
    assert cfg.feature_config.vad is False
    assert cfg.feature_config.mean_norm is False  # the small preset's, kept
    assert make_config("small").feature_config.mean_norm is False and make_config("cpu").feature_config.mean_norm


def test_a_features_option_on_top_of_a_config_merges_too(tmp_path):
    config = tmp_path / "opts.yaml"
    config.write_text("features: {vad: false}\n")
    cfg = make_config("small", config, features={"num_ceps": 20, "num_mel_bins": 20})
    assert (cfg.feature_config.vad, cfg.feature_config.mean_norm, cfg.feature_config.num_ceps) == (False, False, 20)


@pytest.mark.parametrize("name", ["default-model", "default-model.yaml", "train/default-model.yaml"])
def test_a_shipped_training_config_is_found_by_name(name, tmp_path, monkeypatch):
    from copypaste_ser import configs_dir

    monkeypatch.chdir(tmp_path)  # no configs/ folder here, as for an installed wheel
    by_name = make_config("cpu", name)
    by_path = make_config("cpu", configs_dir() / "train" / "default-model.yaml")
    assert by_name == by_path and by_name.epochs == 20 and by_name.weight_decay == 0.01


def test_a_file_beside_the_user_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default-model").write_text("epochs: 3\n")
    assert make_config("cpu", "default-model").epochs == 3


def test_an_unknown_config_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    from copypaste_ser.errors import UserError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"^defualt-model: no such file, nor a shipped training config "
                                        r"\(shipped: across-corpora, default-model\)$"):
        make_config("cpu", "defualt-model")
