"""predictions.json: the compact form round-trips, is smaller, and older plain files still load."""

import json

import pytest

from copypaste_ser.errors import UserError
from copypaste_ser.evaluation.predictions_file import FORMAT, dumps, loads, read_predictions, write_predictions


def corpus_runs() -> dict:
    """Two held-out corpora, three seeds each, plus a baseline that scored only some utterances."""
    emotions = ["angry", "happy", "neutral", "sad"]
    preds = {}
    for corpus, n in (("emodb", 40), ("ravdess", 60)):
        for seed in range(3):
            preds[f"loco-{corpus}|whisper-attention|clean|none|{seed}|clean"] = {
                f"{corpus}-{i:03d}": (emotions[i % 4], emotions[(i * (seed + 2)) % 4]) for i in range(n)}
    preds["loco-emodb|egemaps-svm|clean|none|0|clean"] = {f"emodb-{i:03d}": (emotions[i % 4], "sad")
                                                         for i in range(0, 40, 3)}
    return preds


def test_the_compact_form_round_trips_and_is_smaller(tmp_path):
    preds = corpus_runs()
    text = dumps(preds)
    assert json.loads(text)["format"] == FORMAT
    assert loads(text) == preds
    assert len(text) < len(json.dumps(preds)) / 3
    write_predictions(tmp_path / "predictions.json", preds)
    assert read_predictions(tmp_path / "predictions.json") == preds


def test_plain_files_load_and_what_cannot_be_compact_stays_plain(tmp_path):
    preds = corpus_runs()
    (tmp_path / "old.json").write_text(json.dumps(preds))  # lists, as written before
    assert read_predictions(tmp_path / "old.json") == preds
    clash = {"a|x": {"u1": ("sad", "sad")}, "b|x": {"u1": ("happy", "sad")}}  # one id, two true labels
    assert "format" not in json.loads(dumps(clash)) and loads(dumps(clash)) == clash
    many = {"a|x": {f"u{i}": (f"label{i}", f"label{i}") for i in range(70)}}  # more labels than codes
    assert loads(dumps(many)) == many
    assert loads(dumps({})) == {} and loads(dumps({"a|x": {}})) == {"a|x": {}}


def test_a_foreign_file_is_one_line(tmp_path):
    (tmp_path / "predictions.json").write_text('{"format": "copypaste-ser/predictions/2", "runs": 3}')
    with pytest.raises(UserError) as e:
        read_predictions(tmp_path / "predictions.json")
    assert "predictions.json: not a predictions file of copypaste-ser" in str(e.value) and "\n" not in str(e.value)
