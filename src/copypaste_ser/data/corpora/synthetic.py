"""A synthetic speech-like emotion corpus for tests, demos and smoke runs (no licence needed).

``generate(out_dir)`` writes ``spkNN_<emotion>_KKK.wav`` (speaker NN from 00, emotion one of
the paper's four: angry, happy, neutral, sad, utterance KKK) and ``prepare(out_dir)`` reads
them back. Even speaker numbers are male voices, odd ones female (``extra["gender"]``).

Each file is 1.5-4 s of "speech": a sequence of voiced syllables separated by short gaps and
occasional longer pauses, some with a fricative-like noise onset, over faint pink-ish
background noise. A syllable is a harmonic source (partials up to about 3.8 kHz) whose
amplitudes follow a spectral tilt and 3 formant-like resonances of a randomly chosen vowel,
with an attack/decay envelope, jitter/shimmer and aspiration noise. The f0 contour has a
per-syllable accent and slope plus declination over the utterance.

Speaker-dependent: base f0 (about 115 Hz male, 205 Hz female, +-12 %), formant scaling
(female about 15 % higher), speaking-rate, tilt, loudness and expressiveness offsets.

Emotion-dependent prosody (means in ``EMOTIONS``; every utterance draws its own values around
them with spreads of the same order as the differences between classes, so classes overlap;
angry and happy are deliberately close): f0 shift and range, syllable rate, level, spectral
tilt, jitter and breathiness. Nothing here is tuned for any augmentation method.

Protocol: ``default`` with speakers sorted: the last round(n/4) test, the round(n/8) before
them dev, the rest train (8 speakers: spk00-04 train, spk05 dev, spk06+07 test, with
both genders in test); plus ``loso-spkNN`` (test = NN, dev = the next speaker cyclically).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from copypaste_ser.data.audio import write_audio
from copypaste_ser.data.corpora.common import (
    audio_files,
    check_unique_ids,
    finish,
    loso_assignments,
    make_utterance,
    require_dir,
    speaker_folds,
)
from copypaste_ser.data.manifest import Manifest, Protocol
from copypaste_ser.errors import UserError

LABELS = ["neutral", "angry", "happy", "sad"]
NAME_RE = re.compile(r"^spk(\d+)_(angry|happy|neutral|sad)_(\d+)$")

# f0 shift (semitones vs the speaker's base), f0 range (st), syllable rate (1/s), level (dB),
# spectral tilt (dB/octave), jitter (relative), breathiness (noise/voice ratio)
EMOTIONS = {
    "neutral": dict(shift=0.0, range=2.5, rate=4.2, level=0.0, tilt=-9.0, jitter=0.006, breath=0.03),
    "angry": dict(shift=3.0, range=4.5, rate=4.8, level=5.0, tilt=-5.5, jitter=0.011, breath=0.03),
    "happy": dict(shift=3.5, range=5.5, rate=4.6, level=3.0, tilt=-7.0, jitter=0.009, breath=0.04),
    "sad": dict(shift=-1.5, range=1.6, rate=3.4, level=-4.0, tilt=-11.5, jitter=0.011, breath=0.08),
}
# per-utterance spread: additive for shift/level/tilt, log-normal sigma for the others
SPREAD = dict(shift=2.0, range=0.3, rate=0.12, level=3.0, tilt=2.5, jitter=0.3, breath=0.3)

# (F1, F2, F3) in Hz for an adult male voice
VOWELS = np.array([[270, 2290, 3010], [530, 1840, 2480], [730, 1090, 2440], [570, 840, 2410],
                   [300, 870, 2240], [500, 1500, 2500], [660, 1720, 2410]], dtype=np.float64)
BANDWIDTHS = np.array([70.0, 100.0, 160.0])
BASE_RMS = 0.05


def speaker_name(i: int) -> str:
    return f"spk{i:02d}"


def gender_of(i: int) -> str:
    return "male" if i % 2 == 0 else "female"


def _speaker_traits(seed: int, i: int) -> dict[str, float]:
    rng = np.random.default_rng([seed, 7919, i])
    male = i % 2 == 0
    return dict(
        f0=(115.0 if male else 205.0) * float(np.exp(rng.normal(0, 0.12))),
        formant=(1.0 if male else 1.15) * float(np.exp(rng.normal(0, 0.04))),
        rate=float(np.exp(rng.normal(0, 0.08))),
        tilt=float(rng.normal(0, 1.5)),
        level=float(rng.normal(0, 1.5)),
        expressive=float(np.exp(rng.normal(0, 0.2))),
    )


def _utterance_params(rng: np.random.Generator, emotion: str, spk: dict[str, float]) -> dict[str, float]:
    mean = EMOTIONS[emotion]
    p = {}
    for key in ("shift", "level", "tilt"):
        p[key] = mean[key] + rng.normal(0, SPREAD[key])
    for key in ("range", "rate", "jitter", "breath"):
        p[key] = mean[key] * float(np.exp(rng.normal(0, SPREAD[key])))
    p["range"] *= spk["expressive"]
    p["rate"] *= spk["rate"]
    p["tilt"] += spk["tilt"]
    p["level"] += spk["level"]
    return p


def _smooth_noise(rng: np.random.Generator, n: int, step: int) -> np.ndarray:
    """Unit-variance noise linearly interpolated between points ``step`` samples apart."""
    pts = rng.standard_normal(n // step + 2)
    return np.interp(np.arange(n) / step, np.arange(pts.size), pts)


def _pinkish(rng: np.random.Generator, n: int) -> np.ndarray:
    size = 1 << max(1, int(np.ceil(np.log2(n))))  # power-of-two FFT: fast for any n
    spec = np.fft.rfft(rng.standard_normal(size))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), size)[:n]
    return x / (x.std() + 1e-12)


def synthesize(rng: np.random.Generator, emotion: str, spk: dict[str, float],
               sample_rate: int = 16000) -> np.ndarray:
    """One utterance as float32 samples: syllable timing, then per-syllable level and pitch,
    then a harmonic voice over the voiced samples, consonant bursts, and a pink noise floor."""
    sr = sample_rate
    p = _utterance_params(rng, emotion, spk)
    total = rng.uniform(1.5, 4.0)
    n = int(total * sr)
    sylls = _syllable_times(rng, p, total)
    seg, env, pitch, accents, gains_db = _prosody(rng, p, sylls, total, n, sr)
    out = _voice(rng, p, spk, seg, env, pitch, accents, sr)
    for j, (c0, v0, _) in enumerate(sylls):  # fricative-like onsets
        a, b = int(c0 * sr), min(int(v0 * sr), n)
        if b - a > 8:
            burst = np.diff(rng.standard_normal(b - a + 1)) * np.hanning(b - a)
            out[a:b] += 0.15 * burst * 10 ** (gains_db[j] / 20)
    out *= BASE_RMS
    out += _pinkish(rng, n) * BASE_RMS * 10 ** (-rng.uniform(25, 40) / 20)
    peak = np.abs(out).max()
    if peak > 0.99:
        out *= 0.99 / peak
    return out.astype(np.float32)


def _syllable_times(rng: np.random.Generator, p: dict[str, float], total: float) -> list[tuple]:
    """(onset start, voiced start, voiced end) in seconds, per syllable."""
    sylls = []
    t = rng.uniform(0.05, 0.2)
    end_limit = total - rng.uniform(0.05, 0.2)
    while True:
        cons = rng.uniform(0.03, 0.07) if rng.random() < 0.6 else 0.0
        dur = rng.uniform(0.6, 0.9) / p["rate"]
        if t + cons + dur > end_limit:
            break
        sylls.append((t, t + cons, t + cons + dur))
        t += cons + dur
        t += rng.uniform(0.12, 0.3) if rng.random() < 0.2 else rng.uniform(0.02, 0.06)
    if not sylls:  # extremely slow rate: one syllable filling the utterance
        sylls.append((0.1, 0.1, end_limit))
    return sylls


def _prosody(rng: np.random.Generator, p: dict[str, float], sylls: list[tuple], total: float, n: int,
             sr: int) -> tuple[np.ndarray, ...]:
    """Per sample: the syllable index (-1 unvoiced), the amplitude envelope and the pitch
    contour in semitones; per syllable: the accent and the level (dB)."""
    seg = np.full(n, -1, dtype=np.int64)
    env = np.zeros(n)
    knots_t, knots_st = [], []
    accents = rng.normal(0, p["range"] / 2, len(sylls)).clip(-p["range"], p["range"])
    gains_db = p["level"] + rng.normal(0, 1.5, len(sylls)) + 1.0 * accents / max(p["range"], 0.5)
    for j, (_, v0, v1) in enumerate(sylls):
        a, b = int(v0 * sr), min(int(v1 * sr), n)
        if b - a < 8:
            continue
        seg[a:b] = j
        m = b - a
        att = max(2, min(m // 3, int(rng.uniform(0.015, 0.03) * sr)))
        dec = max(2, min(m // 2, int(rng.uniform(0.03, 0.06) * sr)))
        e = np.ones(m)
        e[:att] = 0.5 - 0.5 * np.cos(np.pi * np.arange(att) / att)
        e[m - dec:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(dec) / dec)
        env[a:b] = e * 10 ** (gains_db[j] / 20)
        slope = rng.normal(0, p["range"] / 3)
        decl = -2.0 * (v0 / total)
        knots_t += [v0, v1]
        knots_st += [p["shift"] + decl + accents[j] - slope / 2, p["shift"] + decl + accents[j] + slope / 2]
    pitch = np.interp(np.arange(n) / sr, knots_t, knots_st) if knots_t else np.zeros(n)
    return seg, env, pitch, accents, gains_db


def _voice(rng: np.random.Generator, p: dict[str, float], spk: dict[str, float], seg: np.ndarray,
           env: np.ndarray, pitch: np.ndarray, accents: np.ndarray, sr: int) -> np.ndarray:
    """f0 with jitter; harmonic partials shaped by a random vowel's formants, with shimmer and
    breath, over the voiced samples only."""
    n = seg.size
    voiced = np.nonzero(seg >= 0)[0]
    f0 = spk["f0"] * 2 ** (pitch / 12) * (1 + p["jitter"] * _smooth_noise(rng, n, max(1, sr // 200)))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    out = np.zeros(n)
    if not voiced.size:
        return out
    ph = phase[voiced]
    n_part = int(np.clip(3800 / (f0[voiced].max() * 1.05), 3, 40))
    k = np.arange(1, n_part + 1)
    gains = np.zeros((len(accents), n_part))  # per syllable: tilt x 3 resonances of a random vowel
    f0_syl = spk["f0"] * 2 ** ((p["shift"] + accents) / 12)
    for j in range(len(accents)):
        formants = VOWELS[rng.integers(len(VOWELS))] * spk["formant"] * rng.uniform(0.95, 1.05, 3)
        f = k * f0_syl[j]
        g = 10 ** (p["tilt"] / 20 * np.log2(k))
        for fc, bw in zip(formants, BANDWIDTHS * spk["formant"]):
            g = g * fc ** 2 / np.sqrt((fc ** 2 - f ** 2) ** 2 + (bw * f) ** 2)
        g[f > sr / 2 - 200] = 0.0
        gains[j] = g / np.sqrt(np.sum(g ** 2) / 2)  # unit RMS
    amp = gains[seg[voiced]]
    s_prev, s_cur, c2 = np.zeros_like(ph), np.sin(ph), 2 * np.cos(ph)
    voice = np.zeros_like(ph)
    for i in range(n_part):  # sin(k ph) by the Chebyshev recurrence: one sin for all partials
        voice += amp[:, i] * s_cur
        s_prev, s_cur = s_cur, c2 * s_cur - s_prev
    shimmer = 1 + 2 * p["jitter"] * _smooth_noise(rng, voiced.size, max(1, sr // 200))
    hiss = rng.standard_normal(voiced.size + 1)
    breath = p["breath"] * (hiss[1:] + hiss[:-1])  # aspiration: softened white noise
    out[voiced] = (voice * shimmer + breath) * env[voiced]
    return out


def generate(out_dir: Path, speakers: int = 8, utterances_per_emotion: int = 12, seed: int = 0,
             sample_rate: int = 16000) -> Path:
    """Write ``speakers`` x 4 emotions x ``utterances_per_emotion`` WAVs into ``out_dir``."""
    if speakers < 1 or utterances_per_emotion < 1:
        raise UserError(f"{out_dir}: synthetic corpus needs at least 1 speaker and 1 utterance "
                        f"per emotion (got {speakers}, {utterances_per_emotion})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in range(speakers):
        spk = _speaker_traits(seed, i)
        for e, emotion in enumerate(LABELS):
            for u in range(utterances_per_emotion):
                rng = np.random.default_rng([seed, i, e, u])
                wav = synthesize(rng, emotion, spk, sample_rate)
                write_audio(out_dir / f"{speaker_name(i)}_{emotion}_{u:03d}.wav", wav, sample_rate)
    return out_dir


def prepare(root: Path) -> tuple[Manifest, Protocol]:
    root = require_dir(root, "synthetic")
    files = audio_files(root)
    if not files:
        raise UserError(f"{root}: no synthetic files (*.wav|*.flac named like spk03_angry_007) found; "
                        f"create them with copypaste_ser.data.corpora.synthetic.generate")
    utts = []
    for path in files:
        m = NAME_RE.match(path.stem)
        if not m:
            raise UserError(f"{path}: not a synthetic corpus file name (expected spkNN_<emotion>_KKK "
                            f"with emotion one of {', '.join(LABELS)})")
        num, emotion, _ = m.groups()
        utts.append(make_utterance(path.stem, path, f"spk{num}", emotion,
                                   {"gender": gender_of(int(num))}))
    check_unique_ids(utts, root)
    manifest = Manifest("synthetic", list(LABELS), utts, "neutral")

    speakers = manifest.speakers
    n = len(speakers)
    n_test = max(1, int(round(n / 4)))
    n_dev = max(1, int(round(n / 8)))
    assignments: dict[str, dict[str, str]] = {}
    if n >= 3:
        n_dev = min(n_dev, n - n_test - 1)
        if n_dev < 1:
            n_test, n_dev = n - 2, 1
        default = {s: "train" for s in speakers[:n - n_test - n_dev]}
        default.update({s: "dev" for s in speakers[n - n_test - n_dev:n - n_test]})
        default.update({s: "test" for s in speakers[n - n_test:]})
        assignments["default"] = default
    assignments.update(loso_assignments(speakers))
    description = (f"Synthetic: fold 'default' tests on the last {n_test} speakers, develops on the "
                   f"{n_dev} before them, trains on the rest; 'loso-spkNN' leaves one speaker out.")
    return finish(manifest, speaker_folds(manifest, assignments), "default", description, root)
