"""``copypaste-ser score MODEL DATA --fold all --out DIR``: an already trained model (the shipped
default, a run, a model folder) scored on the test split of a corpus's folds, no training.

Each test utterance is scored whole from the feature cache, as a grid scores its runs (the
model's own feature config, its VAD), so the numbers sit beside a grid's in one report:
``DIR/results.csv`` and ``DIR/predictions.json`` are laid out like ``baseline``'s, and
``copypaste-ser report RUNS DIR`` pools them. The model's labels must include the corpus's.
"""

from __future__ import annotations

from pathlib import Path

from copypaste_ser.data.manifest import fold_test_fingerprint, load_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.predictions_file import write_predictions
from copypaste_ser.features.cache import extract_features
from copypaste_ser.files.atomic import atomic_write_csv
from copypaste_ser.files.outputs import check_outputs, record_outputs
from copypaste_ser.metrics import score
from copypaste_ser.training.trainset import speaker_normalised
from copypaste_ser.validation import name_problem


def score_model(model: str | Path | None, data: str | Path, out: str | Path, fold: str = "all",
                name: str | None = None, force: bool = False, progress: bool = True) -> Path:
    """Score ``model`` (None: the shipped default) on every matching fold's test speakers."""
    from copypaste_ser.evaluation.pooled import run_key
    from copypaste_ser.experiments.cross_validation import matching_folds
    from copypaste_ser.inference.engines import load_bundle
    from copypaste_ser.models.scoring import predict_proba

    data, out = Path(data), Path(out)
    problem = name_problem(name) if name is not None else None
    if problem:  # the init column of a run's results: later read as one component of a run's path
        raise UserError(f"--name {name!r} {problem}; give a plain name, e.g. --name shipped-model")
    manifest, protocol = load_corpus(data)
    folds = matching_folds(fold, data)
    files = check_outputs([out / "results.csv", out / "predictions.json"], force, "--out")
    bundle = load_bundle(model, with_onnx=False)
    missing = [lab for lab in manifest.labels if lab not in bundle.labels]
    if missing:
        raise UserError(f"{bundle.source}: the model has no class {', '.join(missing)} of {data}; "
                        f"score it on a corpus with its labels ({', '.join(bundle.labels)})")
    speaker_norm = (bundle.meta.get("train") or {}).get("speaker_norm", "none")
    name = name or ("default-model" if model is None else f"model:{Path(str(model)).name}")
    rows, preds = [], {}
    for fold_name in folds:
        ids = protocol.fold(fold_name).test
        store = extract_features(manifest.subset(ids), bundle.features, data, progress=progress)
        # as the model was trained: with speaker_norm, each test speaker's own statistics
        store = speaker_normalised(store, manifest, ids, speaker_norm, bundle.features)
        probs = predict_proba(bundle.model, [store[i] for i in ids], mean_norm=bundle.features.mean_norm)
        keep = [bundle.labels.index(lab) for lab in manifest.labels]  # the corpus's classes only
        predicted = probs[:, keep].argmax(1).tolist()
        m = score([manifest.label_index(manifest[i].emotion) for i in ids], predicted, manifest.labels)
        row = {"fold": fold_name, "init": name, "training_data": "-", "copypaste": "none", "seed": "-",
               "test": "clean", "weighted_f1": m["weighted_f1"], "uar": m["uar"], "accuracy": m["accuracy"],
               "best_epoch": "", "train_seconds": 0.0, "dev_weighted_f1": "",
               "test_set": fold_test_fingerprint(manifest, ids)}
        row.update({f"f1_{k}": v for k, v in m["per_class_f1"].items()})
        rows.append(row)
        preds[run_key(row)] = {i: [manifest[i].emotion, manifest.labels[k]] for i, k in zip(ids, predicted)}
    atomic_write_csv(out / "results.csv", rows)
    write_predictions(out / "predictions.json", preds)
    record_outputs(files)
    return out / "results.csv"


__all__ = ["score_model"]
