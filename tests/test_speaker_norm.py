"""Speaker normalisation (issue 35): each speaker's features standardised with that speaker's
own statistics over one split, from audio alone; refused where it cannot mean what it says."""

from __future__ import annotations

import json

import numpy as np
import pytest

from copypaste_ser.errors import UserError
from copypaste_ser.features.mfcc import FeatureConfig, whisper_states_features
from copypaste_ser.features.speaker_norm import (
    NeutralEnrolled,
    SpeakerNormalised,
    normalised_columns,
    speaker_statistics,
)


def test_each_speaker_is_standardised_with_their_own_frames_only():
    rng = np.random.default_rng(0)
    feats = {f"a{k}": rng.normal(5.0, 2.0, (30 + k, 3)) for k in range(3)}
    feats |= {f"b{k}": rng.normal(-1.0, 0.5, (20, 3)) for k in range(2)}
    speaker = lambda utt: utt[0]  # noqa: E731
    view = SpeakerNormalised(feats, speaker, list(feats))
    for spk in "ab":
        frames = np.concatenate([view[u] for u in feats if u[0] == spk])
        np.testing.assert_allclose(frames.mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(frames.std(0), 1.0, atol=1e-4)
    # the statistics are those of the ids given: b's do not move when a's utterances change
    only_b = SpeakerNormalised({**feats, "a0": feats["a0"] + 100}, speaker, list(feats))
    np.testing.assert_array_equal(only_b["b1"], view["b1"])
    assert not np.allclose(only_b["a1"], view["a1"])
    with pytest.raises(KeyError):
        view["c0"]


def test_whisper_rows_keep_their_log_mel_and_normalise_the_states():
    cfg = whisper_states_features()
    start = normalised_columns(cfg)
    assert start == 2 * cfg.num_mel_bins and normalised_columns(FeatureConfig()) == 0
    rng = np.random.default_rng(1)
    feats = {"u": rng.normal(3.0, 4.0, (50, start + 8)).astype(np.float32)}
    out = SpeakerNormalised(feats, lambda u: "s", ["u"], start)["u"]
    np.testing.assert_array_equal(out[:, :start], feats["u"][:, :start])  # exact CopyPaste re-encodes these
    mean, std = speaker_statistics(feats, lambda u: "s", ["u"], start)["s"]
    np.testing.assert_allclose(out[:, start:], (feats["u"][:, start:] - mean) / std, rtol=1e-5)


@pytest.mark.parametrize("options, message", [
    ({"init": "resemblyzer-attention"}, "computes its encoder states inside the model"),
    ({"init": "whisper-attention", "copypaste": "n-cp"}, "exact CopyPaste encodes each join anew"),
])
def test_speaker_norm_is_refused_where_it_cannot_apply(options, message):
    from copypaste_ser.training.config import check_applicable, make_config

    with pytest.raises(UserError, match=message):
        check_applicable(make_config("cpu", data="x", speaker_norm="speaker", **options))


@pytest.mark.slow
def test_a_speaker_normalised_run_trains_reports_it_and_predict_refuses_it(synthetic_corpus, tmp_path):
    from copypaste_ser.data.manifest import load_corpus
    from copypaste_ser.inference.predict import EmotionPredictor
    from copypaste_ser.training.config import make_config
    from copypaste_ser.training.loop import train
    from copypaste_ser.training.task import make_task
    from copypaste_ser.training.trainset import load_train_features

    cfg = make_config("tiny", data=str(synthetic_corpus), epochs=1, speaker_norm="speaker", threads=1)
    manifest, protocol = load_corpus(synthetic_corpus)
    stores, _, _ = load_train_features(cfg, manifest, make_task(cfg, manifest, protocol), progress=False)
    frames = np.concatenate([stores["clean"][u] for u in stores["clean"] if manifest[u].speaker == "spk02"])
    np.testing.assert_allclose(frames.mean(0), 0.0, atol=1e-4)  # training reads normalised features
    train(cfg, tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "complete"
    with pytest.raises(UserError, match="trained with speaker normalisation"):
        EmotionPredictor(tmp_path / "run")


def test_reports_say_which_speaker_normalisation_each_model_used():
    from copypaste_ser.experiments.report import speaker_norm_line

    assert speaker_norm_line([{"init": "m"}]).startswith("Speaker normalisation: none")
    line = speaker_norm_line([{"init": "m", "speaker_norm": "speaker"}, {"init": "b", "speaker_norm": "none"}])
    assert "none (b); speaker (m)" in line


def test_a_grid_names_speaker_normalised_runs_apart(tmp_path, synthetic_corpus):
    from copypaste_ser.experiments.grid_config import GridConfig, cells

    for norm, name in (("none", "scratch"), ("speaker", "scratch+speaker-norm"),
                       ("neutral-enrolment", "scratch+neutral-enrolment")):
        cfg = tmp_path / f"{norm}.yaml"
        cfg.write_text(f"data: {synthetic_corpus}\nout: {tmp_path / 'runs'}\npreset: tiny\n"
                       f"train: {{speaker_norm: {norm}}}\ncopypaste: [none]\ntraining_data: [clean]\nseeds: [0]\n"
                       f"folds: [default]\nsnrs: []\n")
        (cell,) = cells(GridConfig.load(cfg))
        assert cell.init_name == name and cell.path(tmp_path).parts[-4] == name


def test_neutral_enrolment_uses_the_speakers_other_neutral_utterances_only():
    rng = np.random.default_rng(2)
    feats = {f"a-neu{k}": rng.normal(1.0, 1.0, (40, 3)) for k in range(3)}
    feats |= {"a-ang": rng.normal(9.0, 3.0, (40, 3)), "b-neu0": rng.normal(-4.0, 2.0, (40, 3)),
              "b-sad": rng.normal(0.0, 1.0, (40, 3)), "c-hap": rng.normal(5.0, 1.0, (40, 3))}
    speaker, neutral = (lambda u: u[0]), (lambda u: "-neu" in u)  # noqa: E731
    view = NeutralEnrolled(feats, speaker, list(feats), neutral)
    enrol_a = np.concatenate([feats[f"a-neu{k}"] for k in range(3)])
    np.testing.assert_allclose(view["a-ang"], (feats["a-ang"] - enrol_a.mean(0)) / enrol_a.std(0), rtol=1e-4)
    # a neutral utterance is normalised with the speaker's OTHER neutral utterances, never itself
    others = np.concatenate([feats["a-neu1"], feats["a-neu2"]])
    np.testing.assert_allclose(view["a-neu0"], (feats["a-neu0"] - others.mean(0)) / others.std(0), rtol=1e-4)
    # b's one neutral utterance enrols b's sad one; itself, and c (no neutral), get the pooled neutrals
    b = feats["b-neu0"]
    np.testing.assert_allclose(view["b-sad"], (feats["b-sad"] - b.mean(0)) / b.std(0), rtol=1e-4)
    pooled = np.concatenate([enrol_a, b])
    np.testing.assert_allclose(view["c-hap"], (feats["c-hap"] - pooled.mean(0)) / pooled.std(0), rtol=1e-4)
    np.testing.assert_allclose(view["b-neu0"], (b - enrol_a.mean(0)) / enrol_a.std(0), rtol=1e-4)
    # an emotional utterance's own audio never moves its statistics
    moved = NeutralEnrolled({**feats, "a-ang": feats["a-ang"] + 50}, speaker, list(feats), neutral)
    np.testing.assert_allclose(moved["a-ang"], view["a-ang"] + 50 / enrol_a.std(0), rtol=1e-4)


def test_neutral_enrolment_needs_neutral_utterances(synthetic_corpus):
    from copypaste_ser.data.manifest import load_corpus
    from copypaste_ser.training.trainset import speaker_normalised

    manifest, _ = load_corpus(synthetic_corpus)
    emotional = [u.id for u in manifest if u.emotion != manifest.neutral][:4]
    feats = {i: np.ones((5, 2)) for i in emotional}
    with pytest.raises(UserError, match="no neutral utterance in this split"):
        speaker_normalised(feats, manifest, emotional, "neutral-enrolment", FeatureConfig())
