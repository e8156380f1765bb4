"""Enrolment (issue 35): a speaker-normalised Whisper model predicts on one speaker's files with
that speaker's statistics, exactly as training normalised a speaker's cached states."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from copypaste_ser.errors import UserError

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def normalised_run(synthetic_corpus, tmp_path_factory) -> Path:
    """A tiny random-weight Whisper encoder and a whisper-attention head trained on its block-2
    states with speaker_norm speaker (one epoch, in process)."""
    from test_whisper import TINY

    from copypaste_ser.training.config import make_config
    from copypaste_ser.training.loop import train

    root = tmp_path_factory.mktemp("enrolment")
    torch.manual_seed(0)
    transformers.WhisperModel(transformers.WhisperConfig(**TINY)).eval().save_pretrained(root / "whisper")
    cfg = make_config("tiny", data=str(synthetic_corpus), init="whisper-attention",
                      encoder_model=str(root / "whisper"), encoder_layer=2, epochs=1, threads=1,
                      speaker_norm="speaker")
    train(cfg, root / "run", progress=False)
    return root / "run"


def _speaker_files(corpus: Path, speaker: str) -> tuple[list[str], list[Path]]:
    from copypaste_ser.data.manifest import load_corpus

    manifest, _ = load_corpus(corpus)
    ids = [u.id for u in manifest if u.speaker == speaker]
    return ids, [corpus / manifest[i].audio if not Path(manifest[i].audio).is_absolute()
                 else Path(manifest[i].audio) for i in ids]


def test_an_enrolled_prediction_is_the_training_time_normalisation(normalised_run, synthetic_corpus):
    from copypaste_ser.data.manifest import load_corpus
    from copypaste_ser.features.cache import extract_features
    from copypaste_ser.features.speaker_norm import SpeakerNormalised, normalised_columns
    from copypaste_ser.inference.engines import softmax
    from copypaste_ser.inference.predict import EmotionPredictor

    manifest, _ = load_corpus(synthetic_corpus)
    ids, files = _speaker_files(synthetic_corpus, manifest[next(iter(manifest)).id].speaker)
    predictor = EmotionPredictor(normalised_run, enrol=files)
    trained = predictor._training_stats
    # what training and `score` read for this speaker: cached states standardised with theirs
    cached = extract_features(manifest.subset(ids), predictor.features, synthetic_corpus, progress=False)
    start = normalised_columns(predictor.features)
    view = SpeakerNormalised(cached, lambda u: manifest[u].speaker, ids, start)
    mean, std = next(iter(view.stats.values()))
    model = predictor.bundle.model
    np.testing.assert_allclose(model.in_mean.numpy(), mean + trained[0].numpy() * std, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(model.in_std.numpy(), std * trained[1].numpy(), rtol=1e-3)
    # the enrolled model on a file = the trained model on that file's normalised cached states
    _, answer = predictor.predict_file(files[0])
    enrolled = (model.in_mean.clone(), model.in_std.clone())
    model.in_mean.copy_(trained[0])
    model.in_std.copy_(trained[1])
    with torch.no_grad():
        logits = model(torch.from_numpy(view[ids[0]])[None]).numpy()
    model.in_mean.copy_(enrolled[0])
    model.in_std.copy_(enrolled[1])
    expected = softmax(logits / predictor.engine.temperature)[0]
    assert [answer["probs"][lab] for lab in predictor.labels] == pytest.approx(expected.tolist(), abs=2e-3)
    # enrolling another speaker starts again from the trained statistics
    other_ids, other_files = _speaker_files(synthetic_corpus, next(u.speaker for u in manifest
                                                                  if u.speaker != manifest[ids[0]].speaker))
    predictor.enrol(other_files)
    assert not np.allclose(model.in_mean.numpy(), enrolled[0].numpy())
    predictor.enrol(files)
    np.testing.assert_allclose(model.in_mean.numpy(), enrolled[0].numpy(), rtol=1e-6)


def test_enrolment_is_asked_for_where_needed_and_refused_elsewhere(normalised_run, synthetic_corpus, tmp_path):
    from copypaste_ser.cli.predict import run_predict
    from copypaste_ser.inference.predict import EmotionPredictor

    _, files = _speaker_files(synthetic_corpus, "spk01")
    with pytest.raises(UserError, match=r"trained with speaker normalisation \(speaker\).*--enrol FILE"):
        EmotionPredictor(normalised_run)
    with pytest.raises(UserError, match="an enrolled model runs on the torch engine"):
        EmotionPredictor(normalised_run, engine="onnx", enrol=files[:2])
    with pytest.raises(UserError, match="--enrol: default model was trained without speaker normalisation"):
        EmotionPredictor(None, enrol=files[:2])
    with pytest.raises(UserError, match="missing.wav: audio file is missing"):
        run_predict([normalised_run, files[0]], None, window=None, hop=None, engine="auto", device="cpu",
                    batch_size=8, vad="energy", out=None, plot=None, as_json=True,
                    enrol=[tmp_path / "missing.wav"])
    silent = tmp_path / "silent.wav"
    import soundfile as sf
    sf.write(silent, np.zeros(32000, np.float32), 16000)
    with pytest.raises(UserError, match="--enrol: no speech in"):
        EmotionPredictor(normalised_run, enrol=[silent])
