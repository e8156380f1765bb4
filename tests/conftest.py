"""Shared fixtures: a small synthetic corpus, prepared once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# as the CLI does before torch loads MKL (bit-identical CPU runs, reproducible.py)
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> Path:
    """A prepared synthetic corpus (6 speakers x 4 emotions x 6 utterances)."""
    from copypaste_ser.data.corpora.synthetic import generate
    from copypaste_ser.data.prepare import prepare_to_dir

    root = tmp_path_factory.mktemp("synthetic")
    generate(root / "audio", speakers=6, utterances_per_emotion=6, seed=1)
    prepare_to_dir("synthetic", root / "audio", root / "data")
    return root / "data"


def save_tiny_whisper(folder: Path, seed: int, **config) -> Path:
    """A tiny random-weight transformers Whisper (test_whisper.TINY, ``config`` over it) saved in ``folder``."""
    import torch
    transformers = pytest.importorskip("transformers")
    from test_whisper import TINY

    torch.manual_seed(seed)
    transformers.WhisperModel(transformers.WhisperConfig(**{**TINY, **config})).eval().save_pretrained(folder)
    return folder


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (integration data)")
    return path


def weighted_f1_from_confusion(confusion) -> float:
    """Weighted F1 recomputed from a confusion matrix (rows: true class), for tests that check a
    reported score against the predictions it claims to summarise."""
    import numpy as np

    cm = np.asarray(confusion, dtype=float)
    support, predicted, hits = cm.sum(1), cm.sum(0), np.diag(cm)
    f1 = np.divide(2 * hits, support + predicted, out=np.zeros_like(hits), where=support + predicted > 0)
    return float((f1 * support).sum() / support.sum())
