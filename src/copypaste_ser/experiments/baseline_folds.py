"""``copypaste-ser baseline DATA --fold all --out DIR``: the baselines alone, in any folds.

eGeMAPS + SVM and the linear probes (MFCC; Resemblyzer states where installed), each fitted on a
fold's training speakers with C chosen on its dev speakers, scored on its test speakers (clean
and at each ``--snr``). ``DIR/results.csv`` and ``DIR/predictions.json`` are laid out like a
grid's or ``train --fold all``'s, so ``copypaste-ser report RUNS DIR --out R`` tables and pools
the baselines beside the deep runs of the same folds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from copypaste_ser.data.manifest import load_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.predictions_file import write_predictions
from copypaste_ser.files.atomic import atomic_write_csv
from copypaste_ser.files.outputs import check_outputs, record_outputs
from copypaste_ser.validation import SNR, check


@dataclass
class BaselineSet:
    """What :func:`baseline.score_baselines` needs of a grid."""
    data: str
    out: str
    folds: list[str]
    snrs: list[float] = field(default_factory=list)
    noise_root: str | None = None
    methods: list[str] | None = None  # None: every installed baseline


def run_baselines(data: str | Path, out: str | Path, fold: str = "all", snrs: list[float] | None = None,
                  noise_root: str | Path | None = None, force: bool = False, progress: bool = True,
                  methods: list[str] | None = None) -> Path:
    """Score the baselines (``methods``, default all installed) in the folds matching ``fold``;
    returns ``out/results.csv``."""
    from copypaste_ser.evaluation.baselines import chosen_baselines, score_baselines
    from copypaste_ser.experiments.cross_validation import matching_folds

    snrs = list(snrs or [])
    for snr in snrs:
        check("--snr", snr, SNR)
    if snrs and noise_root is None:
        raise UserError("--snr: noisy tests need --noise-root (a folder with noise/ and music/)")
    if snrs:  # the noise corpus's layout before any feature is extracted
        from copypaste_ser.data.corpora.musan import prepare_musan
        prepare_musan(Path(noise_root))
    methods = chosen_baselines(methods)  # a bad name is refused before any feature is made
    load_corpus(Path(data))  # a bad corpus is refused before anything is written
    folds = matching_folds(fold, data)
    out = Path(out)
    files = check_outputs([out / "results.csv", out / "predictions.json"], force, "--out")
    spec = BaselineSet(str(data), str(out), folds, snrs, str(noise_root) if noise_root else None, methods)
    rows, preds = score_baselines(spec, progress=progress)
    atomic_write_csv(out / "results.csv", rows)
    write_predictions(out / "predictions.json", preds)
    record_outputs(files)
    return out / "results.csv"


__all__ = ["BaselineSet", "run_baselines"]
