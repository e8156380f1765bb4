"""Noisy training copies computed when drawn (noise_copies: on-the-fly) equal the cached ones."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from copypaste_ser.data.audio import write_audio
from copypaste_ser.data.manifest import load_corpus
from copypaste_ser.experiments.grid_rules import REUSE_IGNORES
from copypaste_ser.training.config import make_config
from copypaste_ser.training.rundir import config_changes
from copypaste_ser.training.task import make_task
from copypaste_ser.training.trainset import load_train_features


def _musan(root):
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for k in range(4):
        write_audio(root / "noise" / f"n{k}.wav", 0.1 * rng.standard_normal(16000).astype(np.float32))
        write_audio(root / "music" / f"m{k}.wav", (0.2 * np.sin(2 * np.pi * (220 + 50 * k) * t)).astype(np.float32))
    return root


def test_on_the_fly_copies_equal_the_cached_ones_and_leave_no_cache(tmp_path, synthetic_corpus):
    data = tmp_path / "data"
    shutil.copytree(synthetic_corpus, data, ignore=shutil.ignore_patterns("features"))
    cached = make_config("tiny", data=str(data), noise_aug=True, noise_root=str(_musan(tmp_path / "musan")))
    on_the_fly = dataclasses.replace(cached, noise_copies="on-the-fly")
    manifest, protocol = load_corpus(data)
    task = make_task(cached, manifest, protocol)

    stores, clean_items, noisy_items = load_train_features(on_the_fly, manifest, task, progress=False)
    (cache_dir,) = (data / "features").iterdir()
    assert [p.name for p in cache_dir.iterdir()] == ["clean"]  # the six copies never touched the disk
    assert len(noisy_items) == 6 * len(clean_items)

    cached_stores, _, cached_items = load_train_features(cached, manifest, task, progress=False)
    assert len(list(cache_dir.iterdir())) == 7
    assert noisy_items == cached_items
    for item in noisy_items[::7]:
        fly, disk = stores[item.condition][item.utt_id], cached_stores[item.condition][item.utt_id]
        assert fly.dtype == disk.dtype == np.float32
        assert np.array_equal(fly, disk), item
    clean_id = clean_items[0].utt_id
    assert not np.array_equal(stores[noisy_items[0].condition][clean_id], stores["clean"][clean_id])


def test_a_finished_run_counts_for_the_grid_whatever_its_noise_copies(tmp_path):
    import yaml
    cfg = make_config("tiny", data=str(tmp_path), noise_aug=True, noise_root=str(tmp_path))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    other = dataclasses.replace(cfg, noise_copies="on-the-fly")
    assert config_changes(tmp_path, other) == ["noise_copies cached -> on-the-fly"]
    assert config_changes(tmp_path, other, REUSE_IGNORES) == []


def test_an_unfinished_run_resumes_with_the_other_noise_copies(tmp_path):
    import contextlib

    from copypaste_ser.errors import UserError
    from copypaste_ser.training.rundir import prepare_run_dir

    cfg = make_config("tiny", data=str(tmp_path), noise_aug=True, noise_root=str(tmp_path))
    with contextlib.ExitStack() as held:
        assert prepare_run_dir(tmp_path / "run", cfg, False, held) is False  # a new run
    (tmp_path / "run" / "last.pt").write_bytes(b"checkpoint")  # cut after an epoch
    with contextlib.ExitStack() as held:  # the same values either way: it resumes
        assert prepare_run_dir(tmp_path / "run", dataclasses.replace(cfg, noise_copies="on-the-fly"), False, held)
    with contextlib.ExitStack() as held, pytest.raises(UserError, match="different config"):
        prepare_run_dir(tmp_path / "run", dataclasses.replace(cfg, epochs=cfg.epochs + 1), False, held)
