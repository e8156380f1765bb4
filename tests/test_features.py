import numpy as np
import pytest

from copypaste_ser.data.audio import write_audio
from copypaste_ser.data.manifest import Utterance
from copypaste_ser.features.cache import cache_folder, extract_features
from copypaste_ser.features.mfcc import FeatureConfig, compute_features, energy_vad, mean_normalize, mfcc

SR = 16000


def _speech_with_pauses(seconds=2.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wave = 0.3 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 1.5 * t) > 0)
    return (wave + 1e-4 * rng.standard_normal(len(t))).astype(np.float32)


def test_mfcc_shape_is_23_dims_at_10ms():
    feats = mfcc(_speech_with_pauses(1.0), FeatureConfig())
    assert feats.shape == (100, 23)
    assert np.isfinite(feats).all()


def test_vad_drops_the_pauses():
    cfg = FeatureConfig()
    wave = _speech_with_pauses(2.0)
    voiced = energy_vad(mfcc(wave, cfg), cfg)
    # the tone is on half of the time
    assert 0.35 < voiced.mean() < 0.65
    assert len(compute_features(wave, cfg)) == voiced.sum()


def test_silence_keeps_all_frames_and_stays_finite():
    cfg = FeatureConfig()
    feats = compute_features(np.zeros(SR, np.float32), cfg)
    assert len(feats) == 100 and np.isfinite(feats).all()


def test_mean_normalize_zero_mean():
    x = np.random.default_rng(0).normal(3, 1, (50, 23)).astype(np.float32)
    assert np.allclose(mean_normalize(x).mean(0), 0, atol=1e-5)


def test_config_key_changes_with_config():
    assert FeatureConfig().key() == FeatureConfig().key()
    assert FeatureConfig().key() != FeatureConfig(num_ceps=20).key()


def test_cache_is_reused_and_extended(tmp_path, monkeypatch):
    utts = []
    for k in range(3):
        p = tmp_path / f"u{k}.wav"
        write_audio(p, _speech_with_pauses(1.0, seed=k))
        utts.append(Utterance(f"u{k}", str(p), "s", "neutral", 1.0))
    cfg = FeatureConfig()
    store = extract_features(utts[:2], cfg, tmp_path, progress=False)
    assert len(store) == 2
    first = store["u0"].copy()

    import copypaste_ser.features.cache as F
    calls = []
    real = F._extract_one
    monkeypatch.setattr(F, "_extract_one", lambda a: calls.append(a[0].id) or real(a))
    store = extract_features(utts[:2], cfg, tmp_path, progress=False)
    assert calls == []  # fully cached
    store = extract_features(utts, cfg, tmp_path, progress=False)
    assert calls == ["u2"] and len(store) == 3
    np.testing.assert_array_equal(store["u0"], first)


def _loud(w, u):
    """Broadband noise that fills the pauses (VAD on it keeps every frame)."""
    return w + 0.05 * np.random.default_rng(0).standard_normal(len(w)).astype(np.float32)


def _one_utterance(tmp_path):
    p = tmp_path / "u.wav"
    write_audio(p, _speech_with_pauses(1.0))
    return Utterance("u", str(p), "s", "neutral", 1.0)


def test_noisy_training_copy_keeps_the_clean_vad(tmp_path):
    utt, cfg = _one_utterance(tmp_path), FeatureConfig()
    clean = extract_features([utt], cfg, tmp_path, progress=False)["u"]
    noisy = extract_features([utt], cfg, tmp_path, condition="loud", transform=_loud, progress=False)["u"]
    assert len(clean) == 74  # the tone's frames (and their context) of 100
    assert noisy.shape == clean.shape  # Kaldi practice: the copy reuses the clean VAD decisions
    assert not np.allclose(noisy, clean)


def test_noisy_test_set_takes_its_vad_from_the_noisy_audio(tmp_path):
    """A deployed system never has the clean signal: the VAD runs on what it hears."""
    from copypaste_ser.data.audio import load_audio
    utt, cfg = _one_utterance(tmp_path), FeatureConfig()
    wave = _loud(load_audio(utt.audio), utt)
    voiced = energy_vad(mfcc(wave, cfg), cfg)
    assert voiced.sum() == 100  # the noise fills the pauses
    # the clean-VAD features of the same condition are cached first: they must not be reused
    old = extract_features([utt], cfg, tmp_path, condition="test-loud", transform=_loud, progress=False)
    assert len(old["u"]) == 74
    test = extract_features([utt], cfg, tmp_path, condition="test-loud", transform=_loud, progress=False,
                            vad_from="noisy")
    np.testing.assert_array_equal(test["u"], mfcc(wave, cfg)[voiced])
    assert test.folder == cache_folder(tmp_path, cfg, "test-loud", "noisy") != old.folder
    assert test.folder.name == "test-loud+noisy-vad"
    with pytest.raises(ValueError, match="vad_from"):
        extract_features([utt], cfg, tmp_path, condition="x", transform=_loud, vad_from="oracle")


def _kaldi_vad(log_energy, cfg):
    """compute-vad, written as Kaldi's loop: window t-ctx..t+ctx clipped to the utterance."""
    if len(log_energy) == 0:
        return np.zeros(0, dtype=bool)
    thr = cfg.vad_energy_threshold + cfg.vad_energy_mean_scale * np.mean(log_energy)
    n, ctx, out = len(log_energy), cfg.vad_frames_context, []
    for t in range(n):
        window = range(max(0, t - ctx), min(n, t + ctx + 1))
        num = sum(log_energy[j] > thr for j in window)
        out.append(num >= len(window) * cfg.vad_proportion_threshold)
    return np.array(out, dtype=bool)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 9])
def test_energy_vad_has_one_decision_per_frame(n):
    cfg = FeatureConfig(vad_proportion_threshold=0.5)
    energy = np.array([30.0, 2.0, 40.0, 1.0, 0.5, 35.0, 1.0, 1.0, 38.0])[:n]
    feats = np.zeros((n, 23), np.float32)
    feats[:, 0] = energy
    voiced = energy_vad(feats, cfg)
    assert voiced.shape == (n,)
    np.testing.assert_array_equal(voiced, _kaldi_vad(energy, cfg))
    if n == 4:  # threshold 5.5 + 0.5 * 18.25 = 14.625: above 1 0 1 0; windows of 3, 4, 4, 3 frames
        assert voiced.tolist() == [True, True, True, False]
    if n == 2:
        assert voiced.tolist() == [True, True]


@pytest.mark.parametrize("sr", [8000, 44100])
def test_other_sample_rates_are_resampled(tmp_path, sr):
    import soundfile as sf

    from copypaste_ser.data.audio import load_audio
    t = np.arange(sr) / sr
    sf.write(tmp_path / "x.wav", 0.1 * np.sin(2 * np.pi * 200 * t), sr)
    assert abs(len(load_audio(tmp_path / "x.wav")) - SR) <= 1


def test_missing_and_broken_audio_are_named(tmp_path):
    from copypaste_ser.data.audio import load_audio
    from copypaste_ser.errors import UserError
    with pytest.raises(UserError, match=r"nope\.wav: audio file is missing"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    with pytest.raises(UserError, match=r"bad\.wav: cannot read audio"):
        load_audio(tmp_path / "bad.wav")


def test_the_cache_key_names_the_encoder_weights_not_only_the_encoder(tmp_path, monkeypatch):
    from copypaste_ser.features import encoders
    from copypaste_ser.features.mfcc import resemblyzer_states_features, whisper_states_features

    cfg = resemblyzer_states_features()
    before = cfg.key()
    encoders.weights_digest.cache_clear()
    (tmp_path / "other.pt").write_bytes(b"other weights")
    monkeypatch.setattr(encoders, "weights_path", lambda: tmp_path / "other.pt")
    assert cfg.key() != before
    encoders.weights_digest.cache_clear()
    base = whisper_states_features("base", 3)
    assert base.key() != whisper_states_features("base", 2).key()
    folder = tmp_path / "ct2"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"v1")
    local = FeatureConfig(**{**base.to_dict(), "encoder_model": str(folder)})
    first = local.key()
    (folder / "model.bin").write_bytes(b"v2 longer")
    assert local.key() != first and first != base.key()


def _noise_folder(tmp_path):
    """A MUSAN-layout folder of eight short constant clips."""
    import numpy as np
    import soundfile as sf

    for kind in ("noise", "music"):
        (tmp_path / "musan" / kind).mkdir(parents=True)
        for i in range(4):
            sf.write(tmp_path / "musan" / kind / f"{i}.wav", np.full(1600, 0.1 * (i + 1), np.float32), 16000)
    return tmp_path / "musan"


def test_noisy_cache_names_change_with_the_noise_pools(tmp_path):
    import numpy as np
    import soundfile as sf

    from copypaste_ser.data.corpora.musan import noise_split_for

    key, sets = noise_split_for(_noise_folder(tmp_path), tmp_path / "corpus")
    assert noise_split_for(tmp_path / "musan", tmp_path / "corpus")[0] == key
    clip = sets["noise"].test[0]
    sf.write(clip, np.full(3200, 0.5, np.float32), 16000)  # same name, other audio
    assert noise_split_for(tmp_path / "musan", tmp_path / "corpus")[0] != key


def test_training_reads_only_its_own_utterances_from_a_cache_that_holds_the_whole_corpus(synthetic_corpus):
    from copypaste_ser.data.manifest import load_corpus
    from copypaste_ser.training.config import make_config
    from copypaste_ser.training.task import make_task
    from copypaste_ser.training.trainset import load_train_features

    cfg = make_config("tiny", data=str(synthetic_corpus))
    manifest, protocol = load_corpus(synthetic_corpus)
    extract_features(list(manifest), cfg.feature_config, synthetic_corpus, progress=False)  # dev and test cached too
    task = make_task(cfg, manifest, protocol)
    stores, items, _ = load_train_features(cfg, manifest, task, progress=False)
    assert sorted(stores["clean"]) == sorted(task.train)  # input statistics never see dev or test audio
    assert not set(stores["clean"]) & (set(task.dev) | set(task.test))
    first = task.train[0]
    full = extract_features(manifest.subset([first]), cfg.feature_config, synthetic_corpus, progress=False)
    np.testing.assert_array_equal(stores["clean"][first], full[first])


def test_the_same_noise_clips_with_new_file_times_keep_their_cache_names(tmp_path):
    import os

    from copypaste_ser.data.corpora.musan import CLIP_HASHES, noise_split_for

    key, _ = noise_split_for(_noise_folder(tmp_path), tmp_path / "corpus")
    memo = next((tmp_path / "corpus" / "noise").iterdir()) / CLIP_HASHES
    assert memo.is_file()
    for clip in (tmp_path / "musan").rglob("*.wav"):  # a restored copy: same bytes, new times
        os.utime(clip, ns=(1_000_000_000, 1_000_000_000))
    assert noise_split_for(tmp_path / "musan", tmp_path / "corpus")[0] == key
    memo.write_text("not json")  # a damaged memo costs hashing again, not a wrong name
    assert noise_split_for(tmp_path / "musan", tmp_path / "corpus")[0] == key
