"""A model's test conditions: the clean test and the test mixed with held-out noise at an SNR.

Light on purpose (no torch): the grid, its --done files and the baselines all name tests here.
"""

from __future__ import annotations

from pathlib import Path


def test_name(snr_db: float | None) -> str:
    """What results.csv and scores.json call a test: ``clean``, or its SNR (``10dB``)."""
    return "clean" if snr_db is None else f"{snr_db:g}dB"


def test_names(snrs: list[float]) -> list[str]:
    """A grid's tests in order: clean, then each SNR."""
    return [test_name(None), *(test_name(s) for s in snrs)]


def noisy_condition(noise_root: str | Path, corpus_dir: Path, snr_db: float, seed: int = 0):
    """(cache-name prefix, transform): the test corruption at ``snr_db`` from the test pool."""
    from copypaste_ser.augment.noise import test_condition
    from copypaste_ser.augment.snr import MIXING_VERSION
    from copypaste_ser.data.corpora.musan import noise_split_for

    key, sets = noise_split_for(Path(noise_root), Path(corpus_dir))
    return f"{key}-mix{MIXING_VERSION}-", test_condition(sets, snr_db, seed=seed)
