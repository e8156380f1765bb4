"""MUSAN pools (corpora.musan) and additive noise at a target SNR (augment.noise)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import copypaste_ser
from copypaste_ser.augment.noise import (
    AddNoise,
    NoiseCondition,
    NoiseSource,
    active_power,
    fit_length,
    mix_at_snr,
    test_condition,
    training_copies,
)
from copypaste_ser.data.corpora.musan import (
    NoiseSet,
    list_audio,
    load_musan,
    load_or_prepare_musan,
    prepare_musan,
    save_musan,
)
from copypaste_ser.data.manifest import Utterance
from copypaste_ser.errors import UserError
from copypaste_ser.features.cache import extract_features
from copypaste_ser.features.mfcc import FeatureConfig

SR = 16000
REAL_NOISE = Path(__file__).resolve().parents[2] / "shared" / "data" / "noise"


# ---------------------------------------------------------------- helpers
def speech_like(seconds: float = 3.0, amp: float = 0.05, seed: int = 0) -> np.ndarray:
    """Harmonic tone bursts (350 ms) separated by pauses (250 ms) with a faint floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    env = ((t % 0.6) < 0.35).astype(np.float64)
    f0 = 180 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    tone = sum(np.sin(k * phase) / k for k in (1, 2, 3, 4))
    x = amp * tone * env + 1e-5 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def measured_snr(speech: np.ndarray, mixture: np.ndarray) -> float:
    added = mixture.astype(np.float64) - speech.astype(np.float64)
    return 10 * np.log10(active_power(speech) / np.mean(added ** 2))


def write(path: Path, wave: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, sr)
    return path


def fake_musan(root: Path, n_noise: int = 12, n_music: int = 9, nested: bool = False,
               speech: int = 0, ext: str = ".wav") -> Path:
    """Tiny MUSAN tree: flat (noise/*.wav) or real layout (noise/free-sound/*.wav, ...)."""
    rng = np.random.default_rng(1)
    sub = {"noise": ["free-sound", "sound-bible"], "music": ["fma", "jamendo"], "speech": ["librivox"]}
    for kind, n in (("noise", n_noise), ("music", n_music), ("speech", speech)):
        if kind == "speech" and n == 0:
            continue
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            folder = root / kind / sub[kind][i % len(sub[kind])] if nested else root / kind
            write(folder / f"{kind}-{i:04d}{ext}", 0.1 * rng.standard_normal(SR // 4).astype(np.float32))
        (root / kind / "ANNOTATIONS").write_text("not audio\n")
    return root


@pytest.fixture(scope="module")
def pools(tmp_path_factory) -> dict[str, NoiseSet]:
    root = fake_musan(tmp_path_factory.mktemp("musan"), n_noise=10, n_music=10, nested=True)
    # different lengths: shorter than, and longer than, the utterances below
    rng = np.random.default_rng(2)
    for i, p in enumerate(list_audio(root)):
        write(p, (0.1 * rng.standard_normal(SR // 2 + 3000 * i)).astype(np.float32))
    return prepare_musan(root, test_fraction=0.3, seed=0)


def utt(uid: str) -> Utterance:
    return Utterance(uid, f"/nowhere/{uid}.wav", "spk", "neutral", 1.0)


# ---------------------------------------------------------------- SNR
@pytest.mark.parametrize("target", [-5, 0, 5, 10, 20])
def test_white_noise_snr_within_0_1_db(target):
    speech = speech_like()
    noise = np.random.default_rng(target + 100).standard_normal(len(speech)).astype(np.float32)
    mix = mix_at_snr(speech, noise, target)
    assert mix.dtype == np.float32 and mix.shape == speech.shape
    assert np.abs(mix).max() <= 1.0  # no rescaling in this range, so mix - speech is the noise
    assert abs(measured_snr(speech, mix) - target) < 0.1


def test_snr_is_against_active_speech_not_pauses():
    speech = speech_like()
    # pauses fill ~40 % of the signal: active power is clearly above the whole-signal power
    assert active_power(speech) > 1.4 * np.mean(speech.astype(np.float64) ** 2)
    voiced_only = speech[(np.arange(len(speech)) / SR % 0.6) < 0.35]
    assert active_power(speech) == pytest.approx(np.mean(voiced_only.astype(np.float64) ** 2), rel=0.2)


def test_active_power_falls_back_to_whole_signal_when_vad_finds_nothing():
    quiet = (1e-4 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    assert active_power(quiet) == pytest.approx(np.mean(quiet.astype(np.float64) ** 2))
    assert active_power(np.zeros(SR, np.float32)) == 0.0
    assert active_power(np.zeros(0, np.float32)) == 0.0


@pytest.mark.skipif(not REAL_NOISE.is_dir(), reason="shared data absent")
@pytest.mark.parametrize("target", [-5, 0, 5, 10, 20])
def test_real_noise_file_snr_within_0_1_db(target):
    from copypaste_ser.data.audio import load_audio
    clip = load_audio(sorted((REAL_NOISE / "noise").glob("*.flac"))[0])
    speech = speech_like(amp=0.02)
    seg = fit_length(clip, len(speech), np.random.default_rng(target + 10))
    mix = mix_at_snr(speech, seg, target)
    assert np.abs(mix).max() <= 1.0
    assert abs(measured_snr(speech, mix) - target) < 0.1


@pytest.mark.parametrize("noise_len", [SR // 3, 5 * SR])
def test_snr_holds_when_noise_is_looped_or_cropped(noise_len):
    speech = speech_like()
    noise = np.random.default_rng(3).uniform(-1, 1, noise_len).astype(np.float32)
    mix = mix_at_snr(speech, noise, 7.0)
    assert mix.shape == speech.shape
    assert abs(measured_snr(speech, mix) - 7.0) < 0.1


def test_fit_length_crops_and_loops_at_offsets():
    clip = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(clip, 4, offset=3), [3, 4, 5, 6])
    np.testing.assert_array_equal(fit_length(clip, 4), [0, 1, 2, 3])
    np.testing.assert_array_equal(fit_length(clip, 25, offset=7), [7, 8, 9] + list(range(10)) * 2 + [0, 1])
    rng = np.random.default_rng(0)
    starts = {int(fit_length(clip, 4, rng)[0]) for _ in range(200)}
    assert starts == set(range(7))  # every crop offset 0..6 reachable, never past the end
    starts = {int(fit_length(clip, 13, rng)[0]) for _ in range(200)}
    assert starts == set(range(10))
    assert len(fit_length(clip, 0, rng)) == 0
    with pytest.raises(ValueError):
        fit_length(clip, 4, offset=7)
    with pytest.raises(ValueError):
        fit_length(clip[:0], 4)


# ---------------------------------------------------------------- degenerate inputs
def test_silent_speech_is_returned_unchanged():
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    for speech in (np.zeros(SR, np.float32), np.full(SR, 1e-7, np.float32)):
        out = mix_at_snr(speech, noise, 0)
        assert out.dtype == np.float32 and np.all(np.isfinite(out))
        np.testing.assert_array_equal(out, speech)
    assert mix_at_snr(np.zeros(0, np.float32), noise, 0).shape == (0,)


def test_silent_noise_raises_documented_error_not_nan():
    speech = speech_like()
    with pytest.raises(ValueError, match="silent"):
        mix_at_snr(speech, np.zeros(len(speech), np.float32), 10)
    with pytest.raises(ValueError, match="silent"):
        mix_at_snr(speech, np.zeros(0, np.float32), 10)
    with pytest.raises(UserError, match=r"^/data/quiet\.wav: noise clip is silent"):
        mix_at_snr(speech, np.full(len(speech), 1e-7, np.float32), 10, noise_name="/data/quiet.wav")


def test_non_finite_inputs_are_refused():
    speech = speech_like()
    noise = np.random.default_rng(0).standard_normal(len(speech))
    bad = noise.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError):
        mix_at_snr(speech, bad, 10)
    with pytest.raises(UserError, match="clip.wav"):
        mix_at_snr(speech, bad, 10, noise_name="clip.wav")
    with pytest.raises(ValueError):
        mix_at_snr(speech, noise, float("nan"))


@pytest.mark.parametrize("target", [-80.0, 0.0, 150.0])
def test_extreme_snrs_stay_finite(target):
    speech = speech_like(amp=0.9)
    noise = np.random.default_rng(1).standard_normal(len(speech))
    out = mix_at_snr(speech, noise, target)
    assert np.all(np.isfinite(out)) and np.abs(out).max() <= 1.0


def test_peak_rescale_keeps_snr():
    speech = speech_like(amp=0.5)
    noise = np.random.default_rng(4).standard_normal(len(speech))
    for target in (0.0, -5.0):
        mix = mix_at_snr(speech, noise, target).astype(np.float64)
        assert np.abs(mix).max() == pytest.approx(1.0, abs=1e-6)  # rescaled, not clipped
        assert np.sum(np.abs(mix) >= 1.0 - 1e-6) <= 2  # a clipped signal would sit at 1.0 often
        # mix = a * speech + b * noise: recover a and b, the SNR is that of a*speech vs b*noise
        (a, b), *_ = np.linalg.lstsq(np.stack([speech, noise], 1).astype(np.float64), mix, rcond=None)
        assert a < 0.9  # the whole mixture was scaled down
        snr = 10 * np.log10(a ** 2 * active_power(speech) / (b ** 2 * np.mean(noise ** 2)))
        assert abs(snr - target) < 0.1


# ---------------------------------------------------------------- MUSAN pools
@pytest.mark.parametrize("nested", [False, True])
def test_prepare_musan_disjoint_pools_both_layouts(tmp_path, nested):
    root = fake_musan(tmp_path / "musan", n_noise=12, n_music=9, nested=nested, speech=4,
                      ext=".flac" if nested else ".wav")
    sets = prepare_musan(root)
    assert set(sets) == {"noise", "music", "speech"}
    for kind, n in (("noise", 12), ("music", 9), ("speech", 4)):
        s = sets[kind]
        assert s.kind == kind and len(s) == n
        assert s.train and s.test and not set(s.train) & set(s.test)
        assert sorted(s.train + s.test) == sorted(str(p.resolve()) for p in list_audio(root / kind))
        assert all(os.path.isabs(f) for f in s.train + s.test)
    assert len(sets["noise"].test) == round(0.3 * 12)


def test_prepare_musan_is_seeded(tmp_path):
    root = fake_musan(tmp_path / "musan", n_noise=20, n_music=20)
    a, b = prepare_musan(root, seed=0), prepare_musan(root, seed=0)
    assert a == b
    c = prepare_musan(root, seed=1)
    assert c["noise"].test != a["noise"].test
    # the split depends on relative names, not on where the corpus lives
    moved = tmp_path / "elsewhere" / "m"
    moved.parent.mkdir()
    root.rename(moved)
    d = prepare_musan(moved, seed=0)
    assert [Path(f).name for f in d["noise"].test] == [Path(f).name for f in a["noise"].test]


def test_prepare_musan_speech_optional_and_tiny_pools(tmp_path):
    root = fake_musan(tmp_path / "m", n_noise=2, n_music=3)
    sets = prepare_musan(root, test_fraction=0.9)
    assert "speech" not in sets
    assert len(sets["noise"].train) == 1 and len(sets["noise"].test) == 1
    root1 = fake_musan(tmp_path / "m1", n_noise=1, n_music=3)
    with pytest.raises(UserError, match=r"noise.*at least 2"):
        prepare_musan(root1)
    with pytest.raises(UserError, match="fraction"):
        prepare_musan(root, test_fraction=1.0)


def test_prepare_musan_errors_name_the_folder(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(UserError, match=str(missing)):
        prepare_musan(missing)
    root = fake_musan(tmp_path / "m", n_noise=3, n_music=3)
    for p in (root / "music").iterdir():
        p.unlink()
    with pytest.raises(UserError, match=rf"{root / 'music'}: no audio"):
        prepare_musan(root)
    (root / "music").rmdir()
    with pytest.raises(UserError, match=rf"{root / 'music'}: MUSAN music folder is missing"):
        prepare_musan(root)


def test_musan_json_roundtrip_and_fixed_pools(tmp_path):
    root = fake_musan(tmp_path / "m", n_noise=6, n_music=6)
    sets = prepare_musan(root, seed=3)
    path = save_musan(sets, tmp_path / "out", seed=3, test_fraction=0.3)
    assert path.name == "musan.json"
    assert load_musan(path) == sets and load_musan(tmp_path / "out") == sets
    again = load_or_prepare_musan(root, tmp_path / "out", seed=3)
    assert again == sets
    with pytest.raises(UserError, match="seed"):
        load_or_prepare_musan(root, tmp_path / "out", seed=4)
    fresh = load_or_prepare_musan(root, tmp_path / "new", seed=3)
    assert fresh == sets and (tmp_path / "new" / "musan.json").is_file()
    data = json.loads(path.read_text())
    data["sets"]["noise"]["test"].append(data["sets"]["noise"]["train"][0])
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match="both the train and test pool"):
        load_musan(path)
    with pytest.raises(UserError, match="missing"):
        load_musan(tmp_path / "absent" / "musan.json")


# ---------------------------------------------------------------- NoiseCondition
def test_noise_condition_is_deterministic_per_utterance(pools):
    wave = speech_like(1.0)
    a = NoiseCondition(NoiseSource(pools["noise"].train), 5, seed=0, name="noise")
    b = NoiseCondition(NoiseSource(pools["noise"].train), 5, seed=0, name="noise")
    c = pickle.loads(pickle.dumps(a))  # what a worker process receives
    for uid in ("u1", "spk3/utt_17"):
        out = a(wave, utt(uid))
        np.testing.assert_array_equal(out, b(wave, utt(uid)))
        np.testing.assert_array_equal(out, c(wave, uid))
        np.testing.assert_array_equal(out, a(wave, utt(uid)))  # repeatable, cache or not
    plans = {a.choose(f"u{i}", len(wave))[:2] for i in range(20)}
    assert len(plans) >= 10  # different utterances get generally different clips/offsets
    assert len({p for p, _ in plans}) >= 4
    other = NoiseCondition(NoiseSource(pools["noise"].train), 5, seed=1, name="noise")
    assert not np.array_equal(other(wave, utt("u1")), a(wave, utt("u1")))
    assert abs(measured_snr(wave, a(wave, utt("u1"))) - 5) < 0.1


def test_noise_condition_is_the_same_in_another_process(pools):
    cond = NoiseCondition(NoiseSource(pools["music"].train), 0, seed=7, name="music")
    here = [cond.choose(f"utt{i}", SR)[:2] for i in range(5)]
    code = ("import pickle,sys; c=pickle.load(sys.stdin.buffer); "
            "print([c.choose(f'utt{i}', 16000)[:2] for i in range(5)])")
    env = dict(os.environ, PYTHONHASHSEED="12345",
               PYTHONPATH=str(Path(copypaste_ser.__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(cond), env=env,
                         capture_output=True, check=True).stdout.decode()
    assert out.strip() == str(here)


def test_condition_names():
    src = NoiseSource(["/x/a.wav"])
    assert NoiseCondition(src, 10, name="noise").name == "noise-10dB"
    assert NoiseCondition(src, 0, name="music").name == "music-0dB"
    assert NoiseCondition(src, 2.5, seed=3, name="test-noise+music").name == "test-noise+music-2.5dB-seed3"
    with pytest.raises(ValueError):
        NoiseCondition(src, 10, name="bad/name")


def test_training_copies_use_train_pools(pools):
    conds = training_copies(pools)
    assert [c.name for c in conds] == ["noise-10dB", "noise-5dB", "noise-0dB",
                                       "music-10dB", "music-5dB", "music-0dB"]
    train = set(pools["noise"].train) | set(pools["music"].train)
    used = {c.choose(f"u{i}", SR)[0] for c in conds for i in range(15)}
    assert used <= train
    assert used & set(pools["noise"].train) and used & set(pools["music"].train)
    # the three copies of one kind do not all reuse the same clip for an utterance
    same = sum(len({c.choose(f"u{i}", SR)[:2] for c in conds[:3]}) == 1 for i in range(10))
    assert same < 10
    assert training_copies(pools, seed=2)[0].name == "noise-10dB-seed2"


def test_test_condition_uses_test_pools_of_both_kinds(pools):
    c10, c0 = test_condition(pools, 10), test_condition(pools, 0)
    assert (c10.name, c0.name) == ("test-noise+music-10dB", "test-noise+music-0dB")
    chosen = [c10.choose(f"u{i}", SR)[0] for i in range(40)]
    assert set(chosen) <= set(pools["noise"].test) | set(pools["music"].test)
    assert set(chosen) & set(pools["noise"].test) and set(chosen) & set(pools["music"].test)
    # both test SNRs corrupt an utterance with the same clip and offset; only the level differs
    assert all(c10.choose(f"u{i}", SR)[:2] == c0.choose(f"u{i}", SR)[:2] for i in range(10))
    wave = speech_like(1.0)
    np.testing.assert_array_equal(test_condition(pools, 10)(wave, utt("x")), c10(wave, utt("x")))


def test_silent_clip_is_skipped_with_a_warning(tmp_path):
    silent = write(tmp_path / "silence.flac", np.zeros(SR, np.float32))
    loud = write(tmp_path / "loud.flac", (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32))
    src = NoiseSource([silent, loud])
    with pytest.raises(UserError, match="silence.flac: noise clip is silent"):
        src.clip(0)
    cond = NoiseCondition(src, 10, name="noise")
    wave = speech_like(1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = [cond(wave, f"u{i}") for i in range(12)]
    assert any("silence.flac" in str(w.message) for w in caught)
    assert all(np.all(np.isfinite(o)) and not np.array_equal(o, wave) for o in outs)
    assert {cond.choose(f"u{i}", len(wave))[0] for i in range(12)} == {str(loud)}
    only_silent = NoiseCondition(NoiseSource([silent]), 10, name="noise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UserError, match="silence.flac"):
            only_silent(wave, "u1")


def test_condition_as_feature_transform(pools, tmp_path):
    audio = tmp_path / "a.wav"
    write(audio, speech_like(1.0))
    utts = [Utterance(f"u{i}", str(audio), "s", "neutral", 1.0) for i in range(2)]
    cfg = FeatureConfig()
    cond = training_copies(pools)[0]
    store = extract_features(utts, cfg, tmp_path / "corpus", condition=cond.name, transform=cond,
                             jobs=2, progress=False)
    clean = extract_features(utts, cfg, tmp_path / "corpus", progress=False)
    assert (tmp_path / "corpus" / "features" / cfg.key() / "noise-10dB" / "index.json").is_file()
    assert not np.allclose(store["u0"], clean["u0"])
    assert not np.allclose(store["u0"], store["u1"])  # same audio, different noise per utterance


# ---------------------------------------------------------------- AddNoise
def test_add_noise_probability_and_seed(pools):
    wave = speech_like(1.0)
    never = AddNoise(pools["noise"].train, p=0.0, seed=0)
    assert never(wave) is wave
    always = AddNoise(pools["noise"].train, snr_db=(3, 6), p=1.0, seed=0)
    out = always(wave)
    assert out.shape == wave.shape and not np.array_equal(out, wave)
    path, _, snr = always.last
    assert path in pools["noise"].train and 3 <= snr <= 6
    assert abs(measured_snr(wave, out) - snr) < 0.1
    again = AddNoise(pools["noise"].train, snr_db=(3, 6), p=1.0, seed=0)
    np.testing.assert_array_equal(again(wave), out)
    half = AddNoise(pools["noise"].train, p=0.5, seed=1)
    changed = sum(not np.array_equal(half(wave), wave) for _ in range(40))
    assert 8 <= changed <= 32
    with pytest.raises(ValueError):
        AddNoise(pools["noise"].train, p=1.5)
    with pytest.raises(ValueError):
        AddNoise(pools["noise"].train, snr_db=(10, 0))


# ---------------------------------------------------------------- shared data
@pytest.mark.skipif(not REAL_NOISE.is_dir(), reason="shared data absent")
def test_real_musan_stand_in():
    sets = prepare_musan(REAL_NOISE)
    assert len(sets["noise"]) == 125 and len(sets["music"]) == 87
    for s in sets.values():
        assert not set(s.train) & set(s.test)
