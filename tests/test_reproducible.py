"""The same seed gives bit-identical weights on CPU, also in separate processes (which differ
in hash seed and memory layout), and a re-prepared corpus is not served stale features."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import torch

from copypaste_ser.data.manifest import load_corpus
from copypaste_ser.features.cache import extract_features
from copypaste_ser.features.mfcc import FeatureConfig

TRAIN = """
import sys, torch
from copypaste_ser.training.config import make_config
from copypaste_ser.training.loop import train
cfg = make_config("tiny", data=sys.argv[1], epochs=2, copypaste="n-cp", threads=2)
train(cfg, sys.argv[2], progress=False)
"""


def _weights(run) -> str:
    sd = torch.load(run / "last.pt", weights_only=True)["state_dict"]
    return hashlib.sha1(b"".join(v.numpy().tobytes() for v in sd.values())).hexdigest()


def test_two_identical_runs_give_identical_weights(synthetic_corpus, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    for k, hash_seed in enumerate(("1", "2")):  # separate processes, different hash seeds
        subprocess.run([sys.executable, "-c", TRAIN, str(synthetic_corpus), str(tmp_path / f"r{k}")], check=True,
                       env={**env, "PYTHONHASHSEED": hash_seed}, timeout=600)
    assert _weights(tmp_path / "r0") == _weights(tmp_path / "r1")


def _all(store, manifest) -> dict:
    return {u.id: np.array(store[u.id]) for u in manifest}  # copies: the cache file is replaced later


def test_reprepared_audio_is_extracted_again(tmp_path):
    from copypaste_ser.data.corpora.synthetic import generate
    from copypaste_ser.data.prepare import prepare_to_dir

    generate(tmp_path / "audio", speakers=3, utterances_per_emotion=1, seed=1)
    prepare_to_dir("synthetic", tmp_path / "audio", tmp_path / "data")
    manifest, _ = load_corpus(tmp_path / "data")
    cfg = FeatureConfig()
    first = _all(extract_features(list(manifest), cfg, tmp_path / "data", progress=False), manifest)
    generate(tmp_path / "audio", speakers=3, utterances_per_emotion=1, seed=2)  # other audio, same ids
    for u in manifest:
        os.utime(u.audio, ns=(0, os.stat(u.audio).st_mtime_ns + 10**9))  # even within one mtime tick
    prepare_to_dir("synthetic", tmp_path / "audio", tmp_path / "data", force=True)
    again = _all(extract_features(list(manifest), cfg, tmp_path / "data", progress=False), manifest)
    assert all(not np.array_equal(first[u.id], again[u.id]) for u in manifest)
    # and an unchanged corpus is served from the cache
    cached = _all(extract_features(list(manifest), cfg, tmp_path / "data", progress=False), manifest)
    assert all(np.array_equal(cached[u.id], again[u.id]) for u in manifest)
