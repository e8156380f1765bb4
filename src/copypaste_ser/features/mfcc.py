"""Paper features: 23-dim Kaldi MFCC, energy VAD, mean normalisation (computed, not cached).

MFCC come from kaldi-native-fbank (Kaldi-compatible). The VAD is Kaldi's ``compute-vad``
rule on C0 (log energy). Mean normalisation is *not* cached: it is applied per item after
chunking and CopyPaste (:func:`mean_normalize`), so a concatenation is normalised as a whole;
``FeatureConfig.mean_norm=False`` turns it off (data.pad_batch, inference.predict_proba).

Two kinds of frame features (``FeatureConfig.kind``):

* ``"mfcc"`` (default, the paper): ``num_ceps`` Kaldi MFCC, C0 = log energy.
* ``"resemblyzer-states"``: the ``"mel40-power"`` frames (after VAD) followed by the 768
  states of Resemblyzer's frozen LSTM run over them (encoders.py): 808 values per frame.
  Caching the encoder output once makes training a head on it cheap.
* ``"whisper-states"``: Whisper's log-mel frames two to a row, then the states of one block of
  its frozen encoder (whisper_states.py): ``2 * 80 + 512`` values a row for Whisper-base, a row
  every 20 ms, no VAD (Whisper hears the whole utterance). ``encoder_mix``: the states of every
  block from 0 up to ``encoder_layer`` side by side (the head learns a weighted sum of them).
* ``"ssl-states"``: the 320 waveform samples of each 20-ms state, then one layer's state of a
  frozen wav2vec 2.0 / HuBERT / WavLM encoder (ssl_encoders.py): ``320 + hidden_size`` values a
  row; ``frame_shift_ms`` / ``frame_length_ms`` hold the encoder's stride and receptive field.
* ``"mel40-power"``: Resemblyzer's front end (resemblyzer.audio.wav_to_mel_spectrogram):
  ``num_mel_bins`` (40) librosa-style mel bands (Slaney scale and area norm, 0-8 kHz) of the
  POWER spectrum, no log, periodic Hann window of 400 samples, no pre-emphasis, no DC
  removal; the wave is first raised to -30 dBFS when quieter (resemblyzer's
  ``normalize_volume(wav, -30, increase_only=True)``). kaldi-native-fbank with
  ``is_librosa`` matches librosa.feature.melspectrogram to float precision; only the frame
  grid differs (Kaldi centres frame t at t*10 ms + 5 ms, librosa at t*10 ms). The same
  energy VAD (MFCC C0 of the unscaled wave) picks the frames.

The features of a corpus are computed once and cached on disk by feature_cache.py
(``extract_features``), which also says where the VAD of a noisy condition comes from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from copypaste_ser.data.manifest import Utterance
from copypaste_ser.errors import UserError

#: A waveform transform for a test or training condition: (clean wave, utterance) -> wave.
WaveTransform = Callable[[np.ndarray, Utterance], np.ndarray]

FEATURE_KINDS = ("mfcc", "mel40-power", "resemblyzer-states", "whisper-states", "ssl-states")
STATES_KIND = "resemblyzer-states"
WHISPER_KIND = "whisper-states"
SSL_KIND = "ssl-states"
#: Kinds whose rows hold a frozen encoder's states after the raw input they were computed from.
FROZEN_KINDS = (STATES_KIND, WHISPER_KIND, SSL_KIND)
#: Fields added after caches existed: left out of ``FeatureConfig.key`` at these values.
_KEY_DEFAULTS = {"kind": "mfcc", "mean_norm": True, "encoder_model": None, "encoder_layer": 0, "encoder_width": 0,
                 "encoder_mix": False}


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 16000
    num_ceps: int = 23
    num_mel_bins: int = 23
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    low_freq: float = 20.0
    high_freq: float = -400.0  # Kaldi convention: negative = offset from Nyquist (7600 Hz)
    vad: bool = True
    vad_energy_threshold: float = 5.5
    vad_energy_mean_scale: float = 0.5
    vad_frames_context: int = 2
    vad_proportion_threshold: float = 0.12
    kind: str = "mfcc"              # see FEATURE_KINDS
    mean_norm: bool = True          # per-item mean normalisation (not cached)
    encoder_model: str | None = None  # whisper-/ssl-states: "base" (Whisper), a local model path or a hub name
    encoder_layer: int = 0          # whisper-/ssl-states: the block / layer whose states are kept
    encoder_width: int = 0          # whisper-/ssl-states: values per state (512 for Whisper-base)
    encoder_mix: bool = False       # whisper-/ssl-states: keep blocks 0..encoder_layer (the head learns their weights)

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise UserError(f"unknown feature kind {self.kind!r}: choose one of {', '.join(FEATURE_KINDS)}")
        if self.kind in (WHISPER_KIND, SSL_KIND) and self.vad:
            raise UserError(f"features: {self.kind} take the whole utterance; set vad: false")
        if self.encoder_mix and self.kind not in (WHISPER_KIND, SSL_KIND):
            raise UserError(f"features: encoder_mix applies to {WHISPER_KIND} and {SSL_KIND}, not to {self.kind}; "
                            f"leave it unset")

    @property
    def encoder_layers(self) -> tuple[int, ...]:
        """The blocks / layers whose states a cached row holds: ``encoder_layer``, or with
        ``encoder_mix`` every one from 0 (the encoder's input projection) up to it."""
        return kept_layers(self.encoder_layer, self.encoder_mix)

    @property
    def input_dim(self) -> int:
        """Values per frame a model computes its own states from (raw input of predict / export)."""
        if self.kind == WHISPER_KIND:
            return 2 * self.num_mel_bins
        if self.kind == SSL_KIND:  # the waveform samples of one state
            return int(round(self.sample_rate * self.frame_shift_ms / 1000))
        return self.num_mel_bins if self.kind == STATES_KIND else self.dim

    @property
    def row_shift_ms(self) -> float:
        """Time between cached rows (a Whisper state covers two mel frames)."""
        return self.frame_shift_ms * (2 if self.kind == WHISPER_KIND else 1)

    @property
    def dim(self) -> int:
        """Values per frame."""
        if self.kind == STATES_KIND:  # mel power, then the encoder's states (encoders.py)
            from copypaste_ser.features.encoders import STATES_DIM
            return self.num_mel_bins + STATES_DIM
        if self.kind in (WHISPER_KIND, SSL_KIND):
            return self.input_dim + self.encoder_width * len(self.encoder_layers)
        return self.num_ceps if self.kind == "mfcc" else self.num_mel_bins

    def key(self) -> str:
        """Cache folder name; mean_norm is not part of it (it is applied after the cache)."""
        d = {k: v for k, v in asdict(self).items() if k != "mean_norm"}
        for name, default in _KEY_DEFAULTS.items():  # caches made before these fields stay valid
            if name in d and d[name] == default:
                del d[name]
        if self.kind == WHISPER_KIND:  # the weights themselves, not only their name
            from copypaste_ser.features.whisper_weights import weights_id
            d["weights"] = weights_id(self.encoder_model)
        if self.kind == SSL_KIND:  # a hash of the local folder's files, or hub name@commit
            from copypaste_ser.features import ssl_encoders
            d["weights"] = ssl_encoders.weights_id(str(self.encoder_model))
        if self.kind == STATES_KIND:
            from copypaste_ser.features.encoders import weights_digest
            d["weights"] = weights_digest()
        blob = json.dumps(d, sort_keys=True).encode()
        prefix = {"mfcc": "mfcc-", STATES_KIND: "rzstates-", WHISPER_KIND: "whisper-", SSL_KIND: "ssl-"}.get(self.kind, "mel40-")
        return prefix + hashlib.sha1(blob).hexdigest()[:10]

    def differences(self, other: FeatureConfig) -> list[str]:
        """Names of the fields whose values differ from ``other``'s."""
        a, b = asdict(self), asdict(other)
        return [k for k in a if a[k] != b[k]]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        return cls(**d)


def kept_layers(top: int, mix: bool) -> tuple[int, ...]:
    """The encoder blocks / layers read: ``top``, or with ``mix`` every one from 0 up to it."""
    return tuple(range(top + 1)) if mix else (top,)


def resemblyzer_states_features() -> FeatureConfig:
    """Resemblyzer's mel40 power frames followed by its frozen LSTM's states (encoders.py)."""
    return dataclasses.replace(resemblyzer_features(), kind=STATES_KIND)


def whisper_states_features(model: str = "base", layer: int = 3, option: str = "--whisper-layer",
                            mix: bool = False) -> FeatureConfig:
    """Whisper log-mel rows followed by block ``layer``'s frozen states (whisper_states.py); with
    ``mix`` the states of blocks 0..``layer``, whose weighted sum the head learns."""
    from copypaste_ser.features.whisper_states import whisper_dims
    dims = whisper_dims(model)
    if not 0 <= layer <= dims.blocks:
        raise UserError(f"{option} {layer}: this Whisper encoder has blocks 0-{dims.blocks}; choose one of them")
    return FeatureConfig(kind=WHISPER_KIND, num_mel_bins=dims.n_mels, low_freq=0.0, high_freq=8000.0, vad=False,
                         mean_norm=False, encoder_model=model, encoder_layer=layer, encoder_width=dims.width,
                         encoder_mix=mix)


def ssl_states_features(model: str, layer: int | None = None, mix: bool = False) -> FeatureConfig:
    """Waveform rows followed by layer ``layer``'s frozen states of a wav2vec 2.0 / HuBERT / WavLM
    encoder (ssl_encoders.py); ``None``: the middle layer; ``mix``: layers 0..``layer``."""
    from copypaste_ser.features.ssl_encoders import check_layer, shared_ssl
    enc = shared_ssl(model)
    layer = enc.layers // 2 if layer is None else layer
    check_layer(layer, enc.layers)
    return FeatureConfig(kind=SSL_KIND, sample_rate=enc.sample_rate, frame_shift_ms=1000 * enc.stride / enc.sample_rate,
                         frame_length_ms=1000 * enc.receptive / enc.sample_rate, vad=False, mean_norm=False,
                         encoder_model=model, encoder_layer=layer, encoder_width=enc.width, encoder_mix=mix)


def resemblyzer_features() -> FeatureConfig:
    """The ``mel40-power`` front end of the Resemblyzer model (no mean normalisation)."""
    return FeatureConfig(kind="mel40-power", num_mel_bins=40, low_freq=0.0, high_freq=0.0,
                         mean_norm=False)


def mfcc(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(n_frames, num_ceps) MFCC; C0 is log energy. ``wave`` is float in [-1, 1]."""
    knf = _kaldi()
    opts = knf.MfccOptions()
    opts.frame_opts.samp_freq = cfg.sample_rate
    opts.frame_opts.frame_length_ms = cfg.frame_length_ms
    opts.frame_opts.frame_shift_ms = cfg.frame_shift_ms
    opts.frame_opts.dither = 0.0  # deterministic features; the cache relies on it
    opts.frame_opts.snip_edges = False
    opts.mel_opts.num_bins = cfg.num_mel_bins
    opts.mel_opts.low_freq = cfg.low_freq
    opts.mel_opts.high_freq = cfg.high_freq
    opts.num_ceps = cfg.num_ceps
    opts.use_energy = True
    # Kaldi's energy thresholds assume 16-bit sample values.
    return _run(knf.OnlineMfcc(opts), cfg.sample_rate, wave * 32768.0, cfg.num_ceps)


def _kaldi():
    """kaldi-native-fbank, imported where MFCC or mel power frames are made (a Whisper model's
    predict does without it)."""
    try:
        import kaldi_native_fbank
    except ImportError:
        raise UserError("MFCC and mel-power features need kaldi-native-fbank: "
                        "pip install 'copypaste-ser[train]' (or kaldi-native-fbank)") from None
    return kaldi_native_fbank


def _run(extractor, sample_rate: int, wave: np.ndarray, dim: int) -> np.ndarray:
    """Feed a whole wave to a kaldi-native-fbank extractor and stack its frames."""
    extractor.accept_waveform(sample_rate, np.ascontiguousarray(wave, dtype=np.float32))
    extractor.input_finished()
    out = np.empty((extractor.num_frames_ready, dim), dtype=np.float32)
    for t in range(len(out)):
        out[t] = extractor.get_frame(t)
    return out


#: -30 dBFS as an RMS of samples in [-1, 1] (resemblyzer's audio_norm_target_dBFS).
RESEMBLYZER_RMS = 10 ** (-30 / 20)


def mel_power(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(n_frames, num_mel_bins) librosa-style mel power spectrogram (Resemblyzer's input)."""
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0
    if 0.0 < rms < RESEMBLYZER_RMS:  # resemblyzer: normalize_volume(-30 dBFS, increase_only)
        wave = wave * np.float32(RESEMBLYZER_RMS / rms)
    knf = _kaldi()
    opts = knf.FbankOptions()
    fo = opts.frame_opts
    fo.samp_freq = cfg.sample_rate
    fo.frame_length_ms = cfg.frame_length_ms
    fo.frame_shift_ms = cfg.frame_shift_ms
    fo.dither = 0.0
    fo.snip_edges = False
    fo.preemph_coeff = 0.0
    fo.remove_dc_offset = False
    fo.window_type = "hann"            # periodic Hann, as scipy/librosa
    fo.round_to_power_of_two = False   # n_fft = window length (400), as resemblyzer
    opts.mel_opts.num_bins = cfg.num_mel_bins
    opts.mel_opts.low_freq = cfg.low_freq
    opts.mel_opts.high_freq = cfg.high_freq
    opts.mel_opts.is_librosa = True    # Slaney mel scale and area normalisation
    opts.use_energy = False
    opts.use_log_fbank = False
    opts.use_power = True
    return _run(knf.OnlineFbank(opts), cfg.sample_rate, wave, cfg.num_mel_bins)


def frame_features(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """All frames of ``cfg.kind`` (no VAD, no normalisation)."""
    return mfcc(wave, cfg) if cfg.kind == "mfcc" else mel_power(wave, cfg)


def energy_vad(feats: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Kaldi compute-vad: a frame is speech when enough of its context is above threshold."""
    log_energy = feats[:, 0]
    if log_energy.size == 0:
        return np.zeros(0, dtype=bool)
    threshold = cfg.vad_energy_threshold + cfg.vad_energy_mean_scale * log_energy.mean()
    above = (log_energy > threshold).astype(np.float64)
    ctx = cfg.vad_frames_context
    kernel = np.ones(2 * ctx + 1)
    n = len(above)  # "full" then cut: mode="same" returns len(kernel) values for shorter inputs
    num = np.convolve(above, kernel, mode="full")[ctx: ctx + n]
    den = np.convolve(np.ones(n), kernel, mode="full")[ctx: ctx + n]
    return num >= den * cfg.vad_proportion_threshold


def compute_features(wave: np.ndarray, cfg: FeatureConfig, vad_wave: np.ndarray | None = None) -> np.ndarray:
    """Features (``cfg.kind``) of ``wave`` with VAD frames kept; VAD decided on ``vad_wave``
    when given (the clean signal of a noisy training copy), else on ``wave`` itself. All
    frames are kept when VAD finds none."""
    if cfg.kind == STATES_KIND:  # the encoder hears the voiced mel frames, as in training
        from copypaste_ser.features.encoders import encode_arrays
        mel = compute_features(wave, dataclasses.replace(cfg, kind="mel40-power"), vad_wave)
        return np.concatenate([mel, encode_arrays([mel])[0]], axis=1)
    if cfg.kind == WHISPER_KIND:  # the whole utterance, no VAD
        from copypaste_ser.features.whisper_states import encode_rows, mel_rows
        rows = mel_rows(wave, cfg.num_mel_bins)
        states = encode_rows([rows], cfg.encoder_layers, cfg.encoder_model)[0]
        return np.concatenate([rows, states], axis=1)
    if cfg.kind == SSL_KIND:  # the whole utterance's samples, no VAD
        from copypaste_ser.features.ssl_encoders import encode_wave
        rows, states = encode_wave(wave, cfg.encoder_layers, str(cfg.encoder_model))
        return np.concatenate([rows, states], axis=1)
    feats = frame_features(wave, cfg)
    if not cfg.vad:
        return feats
    if vad_wave is None and cfg.kind == "mfcc":
        ref = feats
    else:
        ref = mfcc(wave if vad_wave is None else vad_wave, cfg)
    voiced = energy_vad(ref, cfg)[: len(feats)]
    return feats[voiced] if voiced.any() else feats


def encode_inputs(inputs: list[np.ndarray], cfg: FeatureConfig) -> list[np.ndarray]:
    """The frozen encoder's states of each ``(T, cfg.input_dim)`` raw-input matrix (mel frames,
    Whisper's log-mel rows or waveform rows), each encoded whole: what a join of cached rows is
    re-encoded with (augment/reencode.py, the concat probe)."""
    if cfg.kind == STATES_KIND:
        from copypaste_ser.features.encoders import encode_arrays
        return encode_arrays(inputs)
    if cfg.kind == WHISPER_KIND:
        from copypaste_ser.features.whisper_states import encode_rows
        return encode_rows(inputs, cfg.encoder_layers, cfg.encoder_model)
    if cfg.kind == SSL_KIND:
        from copypaste_ser.features import ssl_encoders
        return ssl_encoders.encode_rows(inputs, cfg.encoder_layers, str(cfg.encoder_model))
    raise ValueError(f"feature kind {cfg.kind!r} has no frozen encoder")


def mean_normalize(feats: np.ndarray) -> np.ndarray:
    return feats - feats.mean(axis=0, keepdims=True)

