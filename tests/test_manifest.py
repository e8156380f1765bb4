import json

import pytest

from copypaste_ser.data.manifest import (
    Fold,
    Manifest,
    Protocol,
    Utterance,
    load_corpus,
    save_corpus,
    validate,
)
from copypaste_ser.errors import UserError


def _corpus(tmp_path, n_per_spk=2):
    utts = []
    for s in ("a", "b", "c"):
        for k in range(n_per_spk):
            p = tmp_path / f"{s}{k}.wav"
            p.write_bytes(b"x")
            utts.append(Utterance(f"{s}{k}", str(p), s, ["neutral", "angry"][k % 2], 1.0))
    m = Manifest("toy", ["neutral", "angry"], utts)
    ids = lambda s: [u.id for u in utts if u.speaker == s]  # noqa: E731
    proto = Protocol([Fold("default", ids("a"), ids("b"), ids("c"))], "default")
    return m, proto


def test_valid_corpus_round_trips(tmp_path):
    m, proto = _corpus(tmp_path)
    validate(m, proto)
    save_corpus(tmp_path / "c", m, proto)
    m2, p2 = load_corpus(tmp_path / "c", check_files=True)
    assert [u.id for u in m2] == [u.id for u in m]
    assert p2.fold().test == proto.fold().test
    assert m2.labels == ["neutral", "angry"]


def test_speaker_in_train_and_test_is_refused(tmp_path):
    m, proto = _corpus(tmp_path)
    proto.folds[0].test.append("a0")
    with pytest.raises(UserError, match="speaker 'a' is in both train and test"):
        validate(m, proto)


def test_missing_file_is_named(tmp_path):
    m, proto = _corpus(tmp_path)
    (tmp_path / "b1.wav").unlink()
    with pytest.raises(UserError) as e:
        validate(m, proto)
    assert "b1.wav" in str(e.value) and "missing" in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_label_and_duplicate_id(tmp_path):
    m, _ = _corpus(tmp_path)
    bad = Manifest("toy", m.labels, m.utterances + [Utterance("z", m.utterances[0].audio, "z", "joy", 1.0)])
    with pytest.raises(UserError, match="unknown label 'joy'"):
        validate(bad)
    dup = Manifest("toy", m.labels, m.utterances + [m.utterances[0]])
    with pytest.raises(UserError, match="duplicate utterance id 'a0'"):
        validate(dup)


def test_load_corpus_reports_the_bad_line(tmp_path):
    m, proto = _corpus(tmp_path)
    save_corpus(tmp_path / "c", m, proto)
    with open(tmp_path / "c" / "manifest.jsonl", "a") as f:
        f.write(json.dumps({"id": "q"}) + "\n")
    with pytest.raises(UserError, match=r"manifest.jsonl:7: not a valid utterance record"):
        load_corpus(tmp_path / "c")


def test_missing_corpus_dir_says_what_to_run(tmp_path):
    with pytest.raises(UserError, match="run `copypaste-ser prepare`"):
        load_corpus(tmp_path / "nothing")


def test_atomic_writes_get_the_permissions_open_gives(tmp_path):
    import os
    import stat

    from copypaste_ser.files.atomic import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        (tmp_path / "b.txt").write_text("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o644
