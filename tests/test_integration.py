"""The pipeline on the real audio in ../shared/data (skipped when it is absent)."""

import pytest
from conftest import shared_data

from copypaste_ser.data.prepare import prepare_to_dir
from copypaste_ser.training.config import make_config
from copypaste_ser.training.loop import train

pytestmark = pytest.mark.integration


def test_emodb_trains_end_to_end(tmp_path):
    manifest, protocol = prepare_to_dir("emodb", shared_data("emodb"), tmp_path / "emodb")
    fold = protocol.fold()
    assert len(fold.train) + len(fold.dev) + len(fold.test) == 535
    cfg = make_config("tiny", data=str(tmp_path / "emodb"), epochs=1, threads=1, copypaste="n+se-cp")
    metrics = train(cfg, tmp_path / "run", progress=False)
    assert metrics["n"] == len(fold.test)
    assert set(metrics["per_class_f1"]) == set(manifest.labels)


def test_librispeech_mini_speakers(tmp_path):
    manifest, _ = prepare_to_dir("librispeech", shared_data("librispeech-mini"), tmp_path / "libri")
    assert len(manifest) == 351 and len(manifest.speakers) == 261
