"""End-to-end training on the synthetic corpus with the tiny preset: seams, resume, refusals."""

import json

import pytest
import torch
import yaml
from conftest import weighted_f1_from_confusion

from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.evaluate import evaluate_run
from copypaste_ser.inference.predict import EmotionPredictor
from copypaste_ser.training.config import make_config
from copypaste_ser.training.loop import train, train_seeds


def _cfg(data, **kw):
    kw.setdefault("epochs", 2)
    return make_config("tiny", data=str(data), threads=1, **kw)


@pytest.fixture(scope="module")
def trained_run(synthetic_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cp"
    metrics = train(_cfg(synthetic_corpus, copypaste="n-cp"), out, progress=False)
    return out, metrics


def test_run_directory_holds_everything(trained_run):
    out, metrics = trained_run
    for name in ("config.yaml", "history.jsonl", "last.pt", "model.pt", "metrics.json",
                 "confusion.png", "curves.png", "run.json"):
        assert (out / name).is_file(), name
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    # the scores agree with the confusion matrix they come from, which covers the whole test split
    cm = torch.tensor(metrics["confusion"], dtype=torch.float64)
    assert metrics["weighted_f1"] == pytest.approx(weighted_f1_from_confusion(metrics["confusion"]))
    assert metrics["accuracy"] == pytest.approx(float(cm.diag().sum() / cm.sum())) and cm.sum() == metrics["n"]
    assert set(metrics["per_class_f1"]) == {"neutral", "angry", "happy", "sad"}
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_model_file_is_self_describing(trained_run):
    out, _ = trained_run
    obj = torch.load(out / "model.pt", weights_only=True)
    assert obj["kind"] == "emotion" and obj["labels"][0] == "neutral"
    assert obj["features"]["num_ceps"] == 23
    assert obj["model"]["config"]["num_classes"] == 4


def test_predict_and_evaluate(trained_run, synthetic_corpus):
    out, metrics = trained_run
    from copypaste_ser.data.manifest import load_corpus
    manifest, protocol = load_corpus(synthetic_corpus)
    files = [manifest[i].audio for i in protocol.fold().test[:3]]
    results = EmotionPredictor(out)(files)
    assert len(results) == 3
    for r in results:
        assert r["emotion"] in manifest.labels
        assert abs(sum(r["probs"].values()) - 1) < 1e-3
    m = evaluate_run(out, progress=False, probe="concat")
    assert m["weighted_f1"] == pytest.approx(metrics["weighted_f1"])
    # every emotional test utterance has a neutral partner of the other test speaker, so the
    # probe's "alone" recall is the emotional recall of the confusion matrix (+- one utterance:
    # the probe pads its batches differently)
    probe, cm = m["probe"], m["confusion"]
    emotional = [k for k, name in enumerate(m["labels"]) if name != "neutral"]
    n_emotional = sum(sum(cm[k]) for k in emotional)
    assert probe["pairs"] == n_emotional > 0
    recall = sum(cm[k][k] for k in emotional) / n_emotional
    assert probe["emotion_recall_alone"] == pytest.approx(recall, abs=1.01 / n_emotional)
    assert probe["emotion_kept_concat"] * n_emotional == pytest.approx(round(probe["emotion_kept_concat"] * n_emotional))
    windows = EmotionPredictor(out)(files[:1], window=0.5)
    assert len(windows) >= 2 and windows[0]["start"] == 0.0


def test_existing_run_is_not_overwritten(trained_run, synthetic_corpus):
    out, _ = trained_run
    with pytest.raises(UserError, match="already complete"):
        train(_cfg(synthetic_corpus, copypaste="n-cp"), out, progress=False)
    with pytest.raises(UserError, match="different config"):
        train(_cfg(synthetic_corpus, copypaste="se-cp"), out, progress=False)


def test_interrupted_run_resumes(synthetic_corpus, tmp_path, monkeypatch):
    out = tmp_path / "run"
    cfg = _cfg(synthetic_corpus, epochs=3)
    import copypaste_ser.training.loop as T
    real = T.finish_run
    monkeypatch.setattr(T, "finish_run", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        train(cfg, out, progress=False)
    assert len((out / "history.jsonl").read_text().splitlines()) == 3
    # pretend it died after epoch 2: rewind the resume state
    ckpt = torch.load(out / "last.pt", weights_only=True)
    ckpt["state"]["epoch"] = 2
    ckpt["state"]["history"] = ckpt["state"]["history"][:2]
    torch.save(ckpt, out / "last.pt")
    before = (out / "history.jsonl").read_text().splitlines()
    monkeypatch.setattr(T, "finish_run", real)
    train(cfg, out, progress=False)
    after = (out / "history.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in after] == [1, 2, 3]
    assert after[:2] == before[:2]  # epochs 1-2 were not trained again
    assert (out / "metrics.json").is_file()


def test_seeds_give_mean_and_std(synthetic_corpus, tmp_path):
    summary = train_seeds(_cfg(synthetic_corpus, epochs=1), tmp_path / "s", seeds=[0, 1], progress=False)
    assert len(summary["weighted_f1"]) == 2
    assert summary["std"] >= 0 and (tmp_path / "s" / "seed-1" / "model.pt").is_file()
    cfg = yaml.safe_load((tmp_path / "s" / "seed-1" / "config.yaml").read_text())
    assert cfg["seed"] == 1


def test_n_cp_without_neutral_is_refused(synthetic_corpus, tmp_path):
    import shutil
    data = tmp_path / "noneutral"
    shutil.copytree(synthetic_corpus, data, ignore=shutil.ignore_patterns("features"))
    meta = json.loads((data / "corpus.json").read_text())
    meta["neutral"] = None
    (data / "corpus.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="no neutral label"):
        train(_cfg(data, copypaste="n-cp"), tmp_path / "r", progress=False)


def test_frozen_encoder_keeps_weights_and_norm_statistics(synthetic_corpus, tmp_path, monkeypatch):
    """--freeze-encoder: after training, every encoder parameter AND buffer (BatchNorm running
    mean/var, batch counts) is bit-identical to the start; only the output layer moved."""
    import copypaste_ser.training.loop as T
    start: dict = {}
    real = T.build_emotion_model

    def spy(cfg, n):
        model, prov = real(cfg, n)
        start.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        return model, prov

    monkeypatch.setattr(T, "build_emotion_model", spy)
    train(_cfg(synthetic_corpus, epochs=2, freeze_encoder=True), tmp_path / "frozen", progress=False)
    after = torch.load(tmp_path / "frozen" / "last.pt", weights_only=True)["state_dict"]
    encoder = [k for k in start if not k.startswith("output.")]
    assert any("running_mean" in k for k in encoder) and any("running_var" in k for k in encoder)
    for k in encoder:
        assert torch.equal(start[k], after[k]), k
    assert not torch.equal(start["output.weight"], after["output.weight"])


def test_a_run_saves_its_weights_in_the_standard_layout(synthetic_corpus, tmp_path, monkeypatch):
    """Training may run channels-last on CPU (models/placement.py, COPYPASTE_SER_CHANNELS_LAST=1);
    model.pt keeps the usual layout, which safetensors (the shipped-model format) requires."""
    from copypaste_ser.models.placement import CHANNELS_LAST_ENV
    from copypaste_ser.training.config import make_config
    from copypaste_ser.training.loop import train

    monkeypatch.setenv(CHANNELS_LAST_ENV, "1")
    train(make_config("tiny", data=str(synthetic_corpus), epochs=1, threads=1), tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=False)["state_dict"]
    assert any(v.dim() == 4 for v in state.values())
    assert all(v.is_contiguous() for v in state.values())
