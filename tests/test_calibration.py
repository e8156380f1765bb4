"""Temperature scaling on dev, and a predictor that says "uncertain" rather than guess."""

import numpy as np

from copypaste_ser.evaluation.calibration import fit_temperature, nll


def test_an_overconfident_model_gets_a_temperature_above_one_that_lowers_the_nll():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    logits = rng.standard_normal((400, 4))
    logits[np.arange(400), labels] += 1.0          # right more often than not ...
    sharp = np.exp(4 * logits)                     # ... but four times too sure of itself
    probs = sharp / sharp.sum(1, keepdims=True)
    t = fit_temperature(probs, labels)
    assert 3.0 < t < 5.5
    log_p = np.log(probs)
    assert nll(log_p, labels, t) < nll(log_p, labels, 1.0) - 0.1
    calibrated = np.exp(log_p / t) / np.exp(log_p / t).sum(1, keepdims=True)
    assert (calibrated.argmax(1) == probs.argmax(1)).all()


def test_a_calibrated_model_keeps_a_temperature_near_one():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((2000, 3)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(3, p=p) for p in probs])  # drawn from the model's own beliefs
    assert 0.85 < fit_temperature(probs, labels) < 1.15


def test_the_predictor_applies_the_models_temperature_and_abstains(synthetic_corpus, tmp_path):
    from copypaste_ser.inference.predict import UNCERTAIN, EmotionPredictor
    from copypaste_ser.training.config import make_config
    from copypaste_ser.training.loop import train

    train(make_config("tiny", data=str(synthetic_corpus), epochs=1, threads=1), tmp_path / "run", progress=False)
    wav = next((synthetic_corpus.parent / "audio").rglob("*.wav"))
    plain = EmotionPredictor(tmp_path / "run", engine="torch")
    base = plain.predict_file(wav)[1]
    plain.engine.temperature = 3.0
    flat = plain.predict_file(wav)[1]
    assert flat["emotion"] == base["emotion"] and max(flat["probs"].values()) < max(base["probs"].values())
    sure = EmotionPredictor(tmp_path / "run", engine="torch", min_confidence=0.999).predict_file(wav)[1]
    assert sure["emotion"] == UNCERTAIN and sure["probs"] == base["probs"]
