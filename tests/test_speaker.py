"""Speaker corpora (LibriSpeech, VoxCeleb layouts), the held-out split, speaker-ID pretraining
and fine-tuning an emotion model from the pretrained speaker model (tiny preset)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import weighted_f1_from_confusion

from copypaste_ser.data.corpora import prepare_corpus
from copypaste_ser.data.manifest import SPEAKER_FOLD, Manifest, Utterance, load_corpus
from copypaste_ser.data.prepare import prepare_to_dir
from copypaste_ser.errors import UserError
from copypaste_ser.training.config import make_config
from copypaste_ser.training.loop import train
from copypaste_ser.training.speaker import pretrain_speaker
from copypaste_ser.training.task import held_out_split

SR = 16000


def tone(path: Path, pitch: float, seed: int, seconds: float = 0.3) -> Path:
    """A voiced-sounding 0.3 s file: a speaker-specific pitch with harmonics, plus noise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 6))
    x = 0.2 * x + 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    sf.write(str(path), x.astype(np.float32), SR)
    return path


def make_librispeech(root: Path) -> Path:
    """Three layouts at once: nested (as distributed), flat per speaker, flat per subset."""
    for u in range(4):
        tone(root / "train-clean-100" / "19" / "198" / f"19-198-{u:04d}.flac", 110, u)
    for u in range(3):
        tone(root / "test-other" / "26" / f"26-495-{u:04d}.flac", 180, 10 + u)
    for u in range(4):
        tone(root / "test-other" / "27" / f"27-124-{u:04d}.wav", 240, 20 + u)
    tone(root / "train-clean-100" / "40-222-0000.flac", 300, 30)
    (root / "train-clean-100" / "19" / "198" / "19-198.trans.txt").write_text("transcripts are ignored")
    (root / "train-clean-100" / "SPEAKERS.TXT").write_text(
        "; comment\n;ID  |SEX| SUBSET |MINUTES| NAME\n19   | F | train-clean-100 | 25.19 | A\n"
        "26   | M | test-other | 8.0 | B\n")
    return root


def make_voxceleb(root: Path, nested: bool = True) -> Path:
    base = root / "wav" if nested else root
    for s, spk in enumerate(("id10001", "id10002", "id10003")):
        for v, video in enumerate(("1zcIwhmdeo4", "7gWzIy6yIIk")):
            for u in range(2):
                tone(base / spk / video / f"{u + 1:05d}.wav", 100 + 60 * s, 100 * s + 10 * v + u)
    return root


# ---------------------------------------------------------------- recipes
def test_librispeech_recipe(tmp_path):
    manifest, protocol = prepare_corpus("librispeech", make_librispeech(tmp_path / "LibriSpeech"))
    assert len(manifest) == 12 and manifest.speakers == ["libri-19", "libri-26", "libri-27", "libri-40"]
    assert manifest.labels == ["unknown"] and manifest.neutral is None
    assert {u.emotion for u in manifest} == {"unknown"}
    u = manifest["19-198-0002"]
    assert u.speaker == "libri-19" and u.extra == {"chapter": "198", "subset": "train-clean-100", "gender": "female"}
    assert manifest["26-495-0000"].extra["gender"] == "male" and "gender" not in manifest["27-124-0000"].extra
    assert manifest["40-222-0000"].extra["subset"] == "train-clean-100"
    assert protocol.names == [SPEAKER_FOLD] and protocol.description.startswith("speaker-id")
    fold = protocol.fold()
    assert sorted(fold.train) == sorted(u.id for u in manifest) and not fold.dev and not fold.test


def test_librispeech_subsets_round_trip_and_bad_names(tmp_path):
    root = make_librispeech(tmp_path / "LibriSpeech")
    m, _ = prepare_to_dir("librispeech", root, tmp_path / "data", subsets="test-other")
    assert {u.extra["subset"] for u in m} == {"test-other"} and len(m) == 7
    m2, p2 = load_corpus(tmp_path / "data", check_files=True)  # validates the speaker-id fold
    assert len(m2) == 7 and p2.default == SPEAKER_FOLD
    tone(root / "test-other" / "26" / "notes.wav", 100, 0)
    with pytest.raises(UserError, match="notes.wav: not a LibriSpeech file name"):
        prepare_corpus("librispeech", root)


@pytest.mark.parametrize("nested", [True, False])
def test_voxceleb_recipe(tmp_path, nested):
    root = make_voxceleb(tmp_path / "vox", nested=nested)
    (root / "vox1_meta.csv").write_text("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
                                        "id10001\tA.J._Buckley\tm\tIreland\tdev\n")
    manifest, protocol = prepare_corpus("voxceleb", root)
    assert len(manifest) == 12 and manifest.speakers == ["id10001", "id10002", "id10003"]
    u = manifest["id10001-1zcIwhmdeo4-00002"]
    assert u.extra == {"video": "1zcIwhmdeo4", "gender": "male", "nationality": "Ireland"}
    assert manifest.labels == ["unknown"] and protocol.fold().train and not protocol.fold().test


def test_voxceleb_m4a_needs_conversion(tmp_path):
    root = make_voxceleb(tmp_path / "vox")
    (root / "wav" / "id10001" / "1zcIwhmdeo4" / "00001.m4a").write_bytes(b"aac")  # has a .wav twin
    manifest, _ = prepare_corpus("voxceleb", root)
    assert len(manifest) == 12
    aac = root / "dev" / "aac" / "id00012" / "21Uxsk56VDQ" / "00001.m4a"
    aac.parent.mkdir(parents=True)
    aac.write_bytes(b"aac")
    with pytest.raises(UserError, match=r"00001\.m4a: VoxCeleb \.m4a .*convert.*ffmpeg") as e:
        prepare_corpus("voxceleb", root)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------- held-out split
def test_held_out_split_rules():
    counts = {"a": 1, "b": 2, "c": 3, "d": 10, "e": 7}
    utts = [Utterance(f"{s}{i:02d}", "x.wav", s, "unknown", 1.0) for s, n in counts.items() for i in range(n)]
    manifest = Manifest("m", ["unknown"], utts, None)
    train, held = held_out_split(manifest)
    assert sorted(train + held) == sorted(u.id for u in utts) and not set(train) & set(held)
    per = {s: sum(manifest[i].speaker == s for i in held) for s in counts}
    assert per == {"a": 0, "b": 1, "c": 1, "d": 3, "e": 3}
    assert held_out_split(manifest) == (train, held)  # deterministic
    utts.reverse()
    assert sorted(held_out_split(Manifest("m", ["unknown"], utts, None))[1]) == sorted(held)


# ---------------------------------------------------------------- pretraining and fine-tuning
@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spk")
    prepare_to_dir("librispeech", make_librispeech(tmp / "LibriSpeech"), tmp / "data")
    out = tmp / "run"
    metrics = pretrain_speaker(tmp / "data", out, preset="tiny", epochs=2, threads=1, width=3, progress=False)
    return out, metrics


def test_pretrain_writes_a_speaker_model(pretrained):
    out, metrics = pretrained
    obj = torch.load(out / "model.pt", weights_only=True)
    assert obj["kind"] == "speaker" and obj["corpus"] == "librispeech"
    assert obj["labels"] == ["libri-19", "libri-26", "libri-27", "libri-40"]
    assert obj["model"]["config"]["num_classes"] == 4 and obj["train"]["task"] == "speaker"
    assert obj["model"]["config"]["width"] == 3  # the width option, not the tiny preset's 4
    # held out: ceil(30 %) of speakers 19 (4 utts: 2), 26 (3: 1) and 27 (4: 2); 40 has one utterance
    assert metrics["n"] == 5 and metrics["held_out_speakers"] == 3 and metrics["speakers"] == 4
    assert metrics["top5_accuracy"] == 1.0  # four speakers: top-5 holds every one
    assert metrics["accuracy"] * 5 == pytest.approx(round(metrics["accuracy"] * 5))  # k of 5 right
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2] and "dev_accuracy" in history[0]
    assert (out / "last.pt").is_file() and json.loads((out / "run.json").read_text())["status"] == "complete"


def test_fine_tune_from_pretrained_speaker_model(pretrained, synthetic_corpus, tmp_path):
    out, _ = pretrained
    cfg = make_config("tiny", data=str(synthetic_corpus), init=str(out / "model.pt"), epochs=1, threads=1)
    metrics = train(cfg, tmp_path / "ft", progress=False)
    assert metrics["weighted_f1"] == pytest.approx(weighted_f1_from_confusion(metrics["confusion"]))
    assert sum(map(sum, metrics["confusion"])) == metrics["n"] > 0
    prov = json.loads((tmp_path / "ft" / "run.json").read_text())["provenance"]
    assert prov["init_kind"] == "speaker" and prov["init_corpus"] == "librispeech"
    assert prov["init_arch"] == "thin-resnet34" and len(prov["init_sha1"]) == 12
    obj = torch.load(tmp_path / "ft" / "model.pt", weights_only=True)
    assert obj["kind"] == "emotion" and obj["provenance"] == prov and obj["model"]["config"]["num_classes"] == 4
    width = obj["model"]["config"]["width"]
    with pytest.raises(UserError, match=f"speaker model has width {width} but this run asks for width {width + 1}"):
        train(make_config("tiny", data=str(synthetic_corpus), init=str(out / "model.pt"), width=width + 1, epochs=1),
              tmp_path / "ft-wide", progress=False)


def test_speaker_task_refuses_copypaste_and_unsplittable_corpora(pretrained, tmp_path):
    out, _ = pretrained
    data = torch.load(out / "model.pt", weights_only=True)["train"]["data"]
    with pytest.raises(UserError, match="CopyPaste needs emotion labels"):
        train(make_config("tiny", data=data, task="speaker", copypaste="n-cp", epochs=1), tmp_path / "r",
              progress=False)
    root = tmp_path / "one"
    for s in range(3):
        tone(root / "test-other" / f"{s + 1}-1-0000.flac", 100 + 50 * s, s)
    prepare_to_dir("librispeech", root, tmp_path / "one-data")
    with pytest.raises(UserError, match="no speaker has two or more utterances"):
        pretrain_speaker(tmp_path / "one-data", tmp_path / "r2", preset="tiny", epochs=1, progress=False)


def test_cli_pretrain_speaker(pretrained, tmp_path):
    from typer.testing import CliRunner

    from copypaste_ser.cli.main import app

    out, _ = pretrained
    data = Path(torch.load(out / "model.pt", weights_only=True)["train"]["data"])
    result = CliRunner().invoke(app, ["pretrain-speaker", "--data", str(data), "--out", str(tmp_path / "c"),
                                      "--preset", "tiny", "--epochs", "1", "--threads", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "held-out speaker-ID accuracy" in result.output and (tmp_path / "c" / "model.pt").is_file()
