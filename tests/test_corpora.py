"""Corpus recipes on tiny fake corpora that mimic each distribution's layout, plus
integration checks on ../shared/data when it exists."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from copypaste_ser.data.corpora import (
    RECIPES,
    crema_d,
    emodb,
    folder,
    iemocap,
    msp_podcast,
    prepare_corpus,
    ravdess,
    synthetic,
)
from copypaste_ser.data.manifest import load_corpus, save_corpus, validate
from copypaste_ser.errors import UserError

SR = 16000
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def wav(path: Path, seconds: float = 0.3, seed: int = 0) -> Path:
    """Write a short noise file (format from the suffix: .wav or .flac)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.05 * np.random.default_rng(seed).standard_normal(int(seconds * SR))
    sf.write(str(path), x.astype(np.float32), SR)
    return path


def speakers_of(manifest, ids) -> set[str]:
    return {manifest[i].speaker for i in ids}


def check_disjoint(manifest, protocol) -> None:
    validate(manifest, protocol, check_files=True)
    for f in protocol.folds:
        tr, dv, te = (speakers_of(manifest, f.split(s)) for s in ("train", "dev", "test"))
        assert not (tr & dv) and not (tr & te) and not (dv & te), f.name


# ---------------------------------------------------------------- registry
def test_registry_names():
    assert set(RECIPES) == {"emodb", "ravdess", "crema-d", "iemocap", "msp-podcast", "folder",
                            "synthetic", "librispeech", "voxceleb"}


def test_unknown_corpus_lists_known(tmp_path):
    with pytest.raises(UserError, match="unknown corpus 'nope'.*emodb.*msp-podcast"):
        prepare_corpus("nope", tmp_path)


def test_missing_root(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        prepare_corpus("emodb", tmp_path / "absent")


@pytest.mark.parametrize("name, what", [
    ("emodb", "no EmoDB files"), ("ravdess", "no RAVDESS files"), ("crema-d", "no CREMA-D files"),
    ("iemocap", "no IEMOCAP files"), ("msp-podcast", "no MSP-Podcast files"),
    ("folder", "no labelled audio"), ("synthetic", "no synthetic files")])
def test_empty_root(tmp_path, name, what):
    (tmp_path / "README.txt").write_text("not audio")
    with pytest.raises(UserError, match=what) as e:
        prepare_corpus(name, tmp_path)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)


def test_crema_d_root_above_the_corpus_says_so(tmp_path):
    (tmp_path / "music").mkdir()
    sf.write(tmp_path / "music" / "song.wav", np.zeros(1600, np.float32), 16000)
    with pytest.raises(UserError, match="song.wav: not a CREMA-D file name.*has no AudioWAV/ folder"):
        prepare_corpus("crema-d", tmp_path)


def test_unknown_option(tmp_path):
    with pytest.raises(UserError, match="no option 'colour'.*classes"):
        prepare_corpus("ravdess", tmp_path, colour="red")


# ---------------------------------------------------------------- EmoDB
def make_emodb(root: Path) -> Path:
    names = ["03a01Fa", "03a02Wb", "03b01Nc", "08a01Wa", "08a04Ta", "08b10Ld",
             "09a05Ea", "09a07Aa", "10b01Nb", "10b02Wa", "11a01Nd", "11b03Fa",
             "12a02Tb", "12b09La", "13a01Ec"]
    for i, n in enumerate(names):
        wav(root / "wav" / f"{n}{'.flac' if i % 4 == 0 else '.wav'}", seed=i)
    (root / "wav" / "notes.txt").write_text("ignored")
    (root / "wav" / "._03a01Fa.wav").write_bytes(b"\x00" * 10)  # macOS debris, not audio
    (root / "silb").mkdir()
    return root


def test_emodb(tmp_path):
    m, p = emodb.prepare(make_emodb(tmp_path / "emodb"))
    assert len(m) == 15 and m.name == "emodb" and m.neutral == "neutral"
    assert m.labels == ["neutral", "angry", "happy", "sad", "fear", "disgust", "boredom"]
    assert m.speakers == [f"emodb-{s}" for s in ("03", "08", "09", "10", "11", "12", "13")]
    u = m["03a01Fa"]
    assert u.emotion == "happy" and u.speaker == "emodb-03" and u.audio.endswith(".flac")
    assert Path(u.audio).is_absolute() and u.duration == pytest.approx(0.3, abs=1e-3)
    assert u.extra == {"text_id": "a01", "version": "a", "gender": "male",
                       "text": "Der Lappen liegt auf dem Eisschrank."}
    assert m["08a04Ta"].emotion == "sad" and m["08a04Ta"].extra["gender"] == "female"
    assert {m[i].emotion for i in ("09a05Ea", "09a07Aa", "08b10Ld")} == {"disgust", "fear", "boredom"}
    check_disjoint(m, p)
    d = p.fold()
    assert p.default == "default"
    assert speakers_of(m, d.test) == {"emodb-03", "emodb-08"}
    assert speakers_of(m, d.dev) == {"emodb-09", "emodb-10"}
    assert speakers_of(m, d.train) == {"emodb-11", "emodb-12", "emodb-13"}
    loso = [f for f in p.folds if f.name.startswith("loso-")]
    assert len(loso) == 7
    f = p.fold("loso-emodb-13")
    assert speakers_of(m, f.test) == {"emodb-13"} and speakers_of(m, f.dev) == {"emodb-03"}
    assert len(f.train) == 15 - 1 - 3


def test_emodb_paper4_drops_the_other_emotions(tmp_path):
    m, p = emodb.prepare(make_emodb(tmp_path / "emodb"), classes="paper4")
    assert m.labels == ["neutral", "angry", "happy", "sad"]
    assert {u.emotion for u in m.utterances} <= set(m.labels)
    ids = {u.id for u in m.utterances}
    assert len(ids) == 10 and "09a05Ea" not in ids and "03a01Fa" in ids
    assert "5 utterances of other emotions dropped" in p.description
    check_disjoint(m, p)
    with pytest.raises(UserError, match="EmoDB option classes='paper5'"):
        emodb.prepare(make_emodb(tmp_path / "e2"), classes="paper5")


def test_emodb_root_may_be_wav_folder(tmp_path):
    m, _ = prepare_corpus("emodb", make_emodb(tmp_path / "e") / "wav")
    assert len(m) == 15


def test_emodb_bad_name(tmp_path):
    root = make_emodb(tmp_path / "e")
    wav(root / "wav" / "03a01Xa.wav")
    with pytest.raises(UserError, match=r"03a01Xa\.wav: not an EmoDB file name"):
        emodb.prepare(root)


def test_wav_and_flac_copy_is_an_error(tmp_path):
    root = make_emodb(tmp_path / "e")
    wav(root / "wav" / "03a02Wb.flac")
    with pytest.raises(UserError, match="03a02Wb"):
        emodb.prepare(root)


def test_round_trip(tmp_path):
    m, p = emodb.prepare(make_emodb(tmp_path / "e"))
    save_corpus(tmp_path / "prepared", m, p)
    m2, p2 = load_corpus(tmp_path / "prepared", check_files=True)
    assert m2.utterances == m.utterances and m2.labels == m.labels and m2.neutral == m.neutral
    assert p2.folds == p.folds and p2.default == p.default and p2.description == p.description


# ---------------------------------------------------------------- RAVDESS
def make_ravdess(root: Path, actors=(1, 2, 5, 6, 17, 18, 21, 22)) -> Path:
    k = 0
    for a in actors:
        for emo in range(1, 9):
            for intensity in ((1,) if emo == 1 else (1, 2)):
                name = f"03-01-{emo:02d}-{intensity:02d}-01-01-{a:02d}"
                wav(root / f"Actor_{a:02d}" / f"{name}{'.flac' if k % 3 else '.wav'}", 0.1, seed=k)
                k += 1
    wav(root / "Actor_01" / "03-02-03-01-01-01-01.wav", 0.1)  # song: skipped
    return root


def test_ravdess(tmp_path):
    m, p = ravdess.prepare(make_ravdess(tmp_path / "r"))
    assert len(m) == 8 * 15
    assert m.labels == ["neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"]
    assert len(m.speakers) == 8 and "ravdess-05" in m.speakers
    u = m["03-01-05-02-01-01-05"]
    assert u.emotion == "angry" and u.speaker == "ravdess-05"
    assert u.extra["gender"] == "male" and u.extra["intensity"] == "strong"
    assert u.extra["text"] == "Kids are talking by the door"
    assert m["03-01-08-01-01-01-06"].extra["gender"] == "female"
    assert m["03-01-08-01-01-01-06"].emotion == "surprise"
    assert "1 song files skipped" in p.description
    check_disjoint(m, p)
    d = p.fold("default")
    assert speakers_of(m, d.test) == {"ravdess-21", "ravdess-22"}
    assert speakers_of(m, d.dev) == {"ravdess-17", "ravdess-18"}
    assert speakers_of(m, d.train) == {"ravdess-01", "ravdess-02", "ravdess-05", "ravdess-06"}
    # groups present: 1 (1-4), 2 (5-8), 5 (17-20), 6 (21-24); cv folds need test actors
    assert [n for n in p.names if n.startswith("cv-")] == ["cv-1", "cv-2", "cv-5", "cv-6"]
    cv5 = p.fold("cv-5")
    assert speakers_of(m, cv5.test) == {"ravdess-17", "ravdess-18"}
    assert speakers_of(m, cv5.dev) == {"ravdess-21", "ravdess-22"}
    cv6 = p.fold("cv-6")
    assert speakers_of(m, cv6.dev) == {"ravdess-01", "ravdess-02"}


def test_ravdess_paper4(tmp_path):
    m, p = prepare_corpus("ravdess", make_ravdess(tmp_path / "r"), classes="paper4")
    assert m.labels == ["neutral", "angry", "happy", "sad"]
    assert len(m) == 8 * (1 + 2 + 2 + 2)
    assert {u.emotion for u in m} == set(m.labels)
    check_disjoint(m, p)
    with pytest.raises(UserError, match="classes='six'"):
        ravdess.prepare(tmp_path / "r", classes="six")


def test_ravdess_bad_name(tmp_path):
    root = make_ravdess(tmp_path / "r", actors=(1, 2, 3))
    wav(root / "Actor_02" / "03-01-09-01-01-01-02.wav")
    with pytest.raises(UserError, match=r"03-01-09-01-01-01-02\.wav: .*out-of-range"):
        ravdess.prepare(root)
    (root / "Actor_02" / "03-01-09-01-01-01-02.wav").unlink()
    wav(root / "Actor_02" / "take2.flac")
    with pytest.raises(UserError, match=r"take2\.flac: not a RAVDESS file name"):
        ravdess.prepare(root)


# ---------------------------------------------------------------- CREMA-D
CREMA_ACTORS = ["1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009", "1010", "1011"]


def make_crema(root: Path, demographics: bool = True) -> Path:
    k = 0
    for a in CREMA_ACTORS:
        for emo, level in (("ANG", "HI"), ("DIS", "XX"), ("FEA", "LO"), ("HAP", "MD"), ("NEU", "XX"),
                           ("SAD", "XX")):
            wav(root / "AudioWAV" / f"{a}_DFA_{emo}_{level}.wav", 0.1, seed=k)
            k += 1
    # a header-only file like the distribution's 1076_MTI_SAD_XX.wav
    sf.write(str(root / "AudioWAV" / "1011_MTI_SAD_XX.wav"), np.zeros(0, np.float32), SR)
    # the same file in another copy: 2.6 s of digital silence
    sf.write(str(root / "AudioWAV" / "1010_MTI_SAD_XX.wav"), np.zeros(41108, np.float32), SR)
    if demographics:
        with open(root / "VideoDemographics.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["ActorID", "Age", "Sex", "Race", "Ethnicity"])
            for i, a in enumerate(CREMA_ACTORS):
                w.writerow([a, 30 + i, "Male" if i % 2 == 0 else "Female", "Caucasian", "Not Hispanic"])
    return root


def test_crema_d(tmp_path):
    m, p = crema_d.prepare(make_crema(tmp_path / "c"))
    assert m.labels == ["neutral", "angry", "happy", "sad"] and m.name == "crema-d"
    assert len(m) == 11 * 4
    assert "1011_MTI_SAD_XX" not in [u.id for u in m] and "1010_MTI_SAD_XX" not in [u.id for u in m]
    assert "2 zero-length or silent files skipped" in p.description
    u = m["1002_DFA_HAP_MD"]
    assert u.speaker == "crema-1002" and u.emotion == "happy"
    assert u.extra == {"sentence": "DFA", "level": "medium", "text": "Don't forget a jacket.",
                       "gender": "female", "age": "31", "race": "Caucasian",
                       "ethnicity": "Not Hispanic"}
    check_disjoint(m, p)
    d = p.fold("default")
    # 11 actors: round(11*32/91)=4 test, round(11*8/91)=1 dev, 6 train
    assert [len(speakers_of(m, d.split(s))) for s in ("train", "dev", "test")] == [6, 1, 4]
    m_all, p_all = crema_d.prepare(tmp_path / "c", classes="all")
    assert len(m_all) == 11 * 6 and len(m_all.labels) == 6
    d_all = p_all.fold()
    assert speakers_of(m_all, d_all.test) == speakers_of(m, d.test)  # same actor split
    m2, p2 = crema_d.prepare(make_crema(tmp_path / "c2", demographics=False))
    assert "gender" not in m2["1001_DFA_ANG_HI"].extra
    assert speakers_of(m2, p2.fold().test) == speakers_of(m, d.test)  # deterministic


def test_crema_d_full_split_sizes():
    split = crema_d.split_actors([str(a) for a in range(1001, 1092)])
    counts = {s: sum(v == s for v in split.values()) for s in ("train", "dev", "test")}
    assert counts == {"train": 51, "dev": 8, "test": 32}
    assert split == crema_d.split_actors([str(a) for a in range(1091, 1000, -1)])


def test_crema_d_bad_name(tmp_path):
    root = make_crema(tmp_path / "c")
    wav(root / "AudioWAV" / "1001_DFA_XYZ_XX.wav")
    with pytest.raises(UserError, match="1001_DFA_XYZ_XX.wav: .*unknown emotion 'XYZ'"):
        crema_d.prepare(root)


def test_crema_d_needs_three_actors(tmp_path):
    wav(tmp_path / "AudioWAV" / "1001_DFA_ANG_XX.wav")
    wav(tmp_path / "AudioWAV" / "1002_DFA_ANG_XX.wav")
    with pytest.raises(UserError, match="only 2 actors"):
        crema_d.prepare(tmp_path)


# ---------------------------------------------------------------- IEMOCAP
def make_iemocap(root: Path) -> Path:
    k = 0
    for s in range(1, 6):
        ses = f"Ses{s:02d}"
        dialog = f"{ses}F_impro01"
        rows = [("F000", "neu"), ("M000", "ang"), ("F001", "hap"), ("M001", "sad"),
                ("F002", "exc"), ("M002", "fru"), ("F003", "xxx")]
        lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        trans = []
        for i, (turn, lab) in enumerate(rows):
            utt = f"{dialog}_{turn}"
            lines += [f"[{i * 3 + 0.5:.4f} - {i * 3 + 2.25:.4f}]\t{utt}\t{lab}\t[2.5000, 3.0000, 3.5000]",
                      "C-E2:\tNeutral;\t()", "A-E3:\tval 3; act 2; dom  2;\t()", ""]
            trans.append(f"{utt} [{i * 3 + 0.5:08.4f}-{i * 3 + 2.25:08.4f}]: sentence {i}.")
            wav(root / f"Session{s}" / "sentences" / "wav" / dialog / f"{utt}.wav", 0.1, seed=k)
            k += 1
        ev = root / f"Session{s}" / "dialog" / "EmoEvaluation"
        ev.mkdir(parents=True, exist_ok=True)
        (ev / f"{dialog}.txt").write_text("\n".join(lines) + "\n")
        (ev / "Categorical").mkdir()
        (ev / "Categorical" / f"{dialog}_e1_cat.txt").write_text(f"{dialog}_F000 :Neutral state; ()\n")
        tr = root / f"Session{s}" / "dialog" / "transcriptions"
        tr.mkdir(parents=True)
        (tr / f"{dialog}.txt").write_text("\n".join(trans) + "\n")
    return root


def test_iemocap(tmp_path):
    m, p = iemocap.prepare(make_iemocap(tmp_path / "i"))
    assert m.labels == ["neutral", "angry", "happy", "sad"]
    assert len(m) == 5 * 4
    assert len(m.speakers) == 10
    u = m["Ses01F_impro01_M000"]
    assert u.speaker == "Ses01M" and u.emotion == "angry"  # speaker from the last field
    assert u.extra["gender"] == "male" and u.extra["session"] == "1"
    assert u.extra["valence"] == "2.5000" and u.extra["activation"] == "3.0000"
    assert u.extra["text"] == "sentence 1."
    assert m["Ses03F_impro01_F001"].speaker == "Ses03F"
    assert "Ses01F_impro01_F002" not in [x.id for x in m]  # exc dropped by default
    check_disjoint(m, p)
    assert p.names == [f"fold-{k}" for k in range(1, 6)] and p.default == "fold-1"
    for k in range(1, 6):
        f = p.fold(f"fold-{k}")
        assert speakers_of(m, f.test) == {f"Ses{k:02d}F", f"Ses{k:02d}M"}
        dev = k % 5 + 1
        assert speakers_of(m, f.dev) == {f"Ses{dev:02d}F", f"Ses{dev:02d}M"}
        assert len(f.train) == 3 * 4


def test_iemocap_merge_excited(tmp_path):
    make_iemocap(tmp_path / "IEMOCAP_full_release")
    m, p = prepare_corpus("iemocap", tmp_path, merge_excited=True)  # parent of the release folder
    assert len(m) == 5 * 5
    assert m["Ses02F_impro01_F002"].emotion == "happy"
    assert m["Ses02F_impro01_F002"].extra["label_code"] == "exc"
    check_disjoint(m, p)


def test_iemocap_missing_audio(tmp_path):
    root = make_iemocap(tmp_path / "i")
    gone = root / "Session2" / "sentences" / "wav" / "Ses02F_impro01" / "Ses02F_impro01_M001.wav"
    gone.unlink()
    with pytest.raises(UserError, match="Ses02F_impro01_M001.wav: audio of Ses02F_impro01_M001"):
        iemocap.prepare(root)
    wav(gone.with_suffix(".flac"), 0.1)
    m, _ = iemocap.prepare(root)
    assert m["Ses02F_impro01_M001"].audio.endswith(".flac")


# ---------------------------------------------------------------- MSP-Podcast
MSP_ROWS = [
    # FileName, EmoClass, SpkrID, Gender, Split_Set
    ("MSP-PODCAST_0001_0001.wav", "A", "10", "Male", "Train"),
    ("MSP-PODCAST_0001_0002.wav", "H", "10", "Male", "Train"),
    ("MSP-PODCAST_0001_0003.wav", "N", "11", "Female", "Train"),
    ("MSP-PODCAST_0001_0004.wav", "D", "Unknown", "Unknown", "Train"),
    ("MSP-PODCAST_0001_0005.wav", "C", "11", "Female", "Train"),
    ("MSP-PODCAST_0002_0001.wav", "S", "20", "Female", "Development"),
    ("MSP-PODCAST_0002_0002.wav", "N", "Unknown", "Unknown", "Development"),
    ("MSP-PODCAST_0003_0001.wav", "A", "30", "Male", "Test1"),
    ("MSP-PODCAST_0003_0002.wav", "X", "30", "Male", "Test1"),
    ("MSP-PODCAST_0003_0003.wav", "S", "Unknown", "Unknown", "Test1"),
    ("MSP-PODCAST_0004_0001.wav", "H", "40", "Female", "Test2"),
    ("MSP-PODCAST_0004_0002.wav", "F", "40", "Female", "Test2"),
]


def make_msp(root: Path, label_name: str = "labels_concensus.csv") -> Path:
    (root / "Labels").mkdir(parents=True)
    with open(root / "Labels" / label_name, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"])
        for i, (name, emo, spk, gender, split) in enumerate(MSP_ROWS):
            w.writerow([name, emo, "4.2", "3.8", "4.0", spk, gender, split])
            suffix = ".flac" if i == 2 else ".wav"  # one converted copy
            wav((root / "Audios" / name).with_suffix(suffix), 0.1, seed=i)
    return root


def test_msp_podcast(tmp_path):
    m, p = msp_podcast.prepare(make_msp(tmp_path / "m"))
    assert m.labels == ["neutral", "angry", "happy", "sad", "disgust"]
    assert len(m) == 9  # C and X and F dropped
    assert m["MSP-PODCAST_0001_0003"].audio.endswith(".flac")
    u = m["MSP-PODCAST_0001_0001"]
    assert u.speaker == "msp-10" and u.emotion == "angry"
    assert u.extra == {"split_set": "Train", "gender": "male", "arousal": "4.2", "valence": "3.8",
                       "dominance": "4.0"}
    assert m["MSP-PODCAST_0001_0004"].speaker == "msp-unknown-train"
    assert m["MSP-PODCAST_0002_0002"].speaker == "msp-unknown-development"
    assert m["MSP-PODCAST_0003_0003"].speaker == "msp-unknown-test1"
    check_disjoint(m, p)
    assert p.names == ["standard"]
    f = p.fold()
    assert f.train == ["MSP-PODCAST_0001_0001", "MSP-PODCAST_0001_0002", "MSP-PODCAST_0001_0003",
                       "MSP-PODCAST_0001_0004"]
    assert f.dev == ["MSP-PODCAST_0002_0001", "MSP-PODCAST_0002_0002"]
    assert f.test == ["MSP-PODCAST_0003_0001", "MSP-PODCAST_0003_0003"]


def test_msp_podcast_test2_and_all(tmp_path):
    root = make_msp(tmp_path / "m", "labels_consensus.csv")
    m, p = prepare_corpus("msp-podcast", root, test_set="Test2")
    assert p.fold().test == ["MSP-PODCAST_0004_0001"]
    m, p = prepare_corpus("msp-podcast", root, test_set="Test2", classes="all")
    assert p.fold().test == ["MSP-PODCAST_0004_0001", "MSP-PODCAST_0004_0002"]
    assert m["MSP-PODCAST_0004_0002"].emotion == "fear" and m["MSP-PODCAST_0001_0005"].emotion == "contempt"
    check_disjoint(m, p)
    with pytest.raises(UserError, match="test_set='Test3'"):
        msp_podcast.prepare(root, test_set="Test3")


def test_msp_podcast_bad_rows(tmp_path):
    root = make_msp(tmp_path / "m")
    csv_path = root / "Labels" / "labels_concensus.csv"
    text = csv_path.read_text()
    csv_path.write_text(text + "MSP-PODCAST_0005_0001.wav,Q,1,1,1,50,Male,Train\n")
    with pytest.raises(UserError, match=r"labels_concensus.csv:14: unknown EmoClass 'Q'"):
        msp_podcast.prepare(root)
    csv_path.write_text(text + "MSP-PODCAST_0005_0001.wav,A,1,1,1,50,Male,Train\n")
    with pytest.raises(UserError, match=r"MSP-PODCAST_0005_0001.wav: audio listed in .*:14 is missing"):
        msp_podcast.prepare(root)


# ---------------------------------------------------------------- folder / CSV
def write_csv(path: Path, rows, header=("path", "label", "speaker", "split")) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_folder_csv_with_split(tmp_path):
    rows = []
    for i, (spk, split) in enumerate([("a", "train"), ("b", "train"), ("c", "valid"), ("d", "test")]):
        for lab in ("Anger", "neutral", "sad"):
            rel = f"clips/{spk}_{lab}.wav"
            wav(tmp_path / rel, 0.1, seed=i)
            rows.append((rel, lab, spk, split))
    absolute = wav(tmp_path / "elsewhere" / "x.wav", 0.1)
    rows.append((str(absolute), "happy", "a", "train"))
    write_csv(tmp_path / "list.csv", rows)
    m, p = folder.prepare(tmp_path, csv="list.csv")
    assert m.labels == ["neutral", "angry", "happy", "sad"] and m.neutral == "neutral"
    assert len(m) == 13
    assert m["clips__a_Anger"].emotion == "angry" and m["clips__a_Anger"].speaker == "a"
    assert m["elsewhere__x"].audio == str(absolute)
    assert p.names == ["csv"]
    f = p.fold()
    assert speakers_of(m, f.dev) == {"c"} and speakers_of(m, f.test) == {"d"} and len(f.train) == 7
    check_disjoint(m, p)


def test_folder_csv_without_split(tmp_path):
    rows = []
    for i in range(10):
        for lab in ("happy", "sad"):
            wav(tmp_path / f"s{i}_{lab}.flac", 0.1, seed=i)
            rows.append((f"s{i}_{lab}.flac", lab, f"s{i}"))
    csv_path = write_csv(tmp_path / "list.csv", rows, header=("path", "label", "speaker"))
    m, p = prepare_corpus("folder", tmp_path, csv=csv_path)
    assert m.neutral is None and m.labels == ["happy", "sad"]
    f = p.fold("default")
    sizes = [len(speakers_of(m, f.split(s))) for s in ("train", "dev", "test")]
    assert sizes == [6, 2, 2]  # round(0.15 * 10) = 2 test, 2 dev, the rest train
    check_disjoint(m, p)
    _, p2 = prepare_corpus("folder", tmp_path, csv=csv_path)
    assert p2.folds == p.folds  # deterministic


def test_folder_csv_unknown_label(tmp_path):
    wav(tmp_path / "a.wav", 0.1)
    csv_path = write_csv(tmp_path / "list.csv", [("a.wav", "grumpy", "s1", "train")])
    with pytest.raises(UserError, match=r"list.csv:2: unknown label 'grumpy'"):
        folder.prepare(tmp_path, csv=csv_path)


def test_folder_csv_declared_labels(tmp_path):
    rows = []
    for i, spk in enumerate(("a", "b", "c")):
        for lab in ("grumpy", "cheerful"):
            wav(tmp_path / f"{spk}{lab}.wav", 0.1, seed=i)
            rows.append((f"{spk}{lab}.wav", lab, spk, ("train", "dev", "test")[i]))
    csv_path = write_csv(tmp_path / "list.csv", rows)
    m, p = folder.prepare(tmp_path, csv=csv_path, labels=["cheerful", "grumpy", "neutral"])
    assert m.labels == ["cheerful", "grumpy", "neutral"] and m.neutral == "neutral"
    check_disjoint(m, p)


def test_folder_csv_missing_audio(tmp_path):
    csv_path = write_csv(tmp_path / "list.csv", [("gone.wav", "sad", "s1", "train")])
    with pytest.raises(UserError, match=r"gone.wav: audio listed in .*list.csv:2 is missing"):
        folder.prepare(tmp_path, csv=csv_path)


def test_folder_tree(tmp_path):
    k = 0
    for lab in ("Angry", "neutral", "happiness"):
        for spk in ("anna", "bob", "carl", "dora"):
            for n in range(2):
                sep = "_" if n == 0 else "-"
                wav(tmp_path / "tree" / lab / f"{spk}{sep}{n}.wav", 0.1, seed=k)
                k += 1
    (tmp_path / "tree" / "docs").mkdir()
    (tmp_path / "tree" / "docs" / "readme.md").write_text("no audio here")
    m, p = prepare_corpus("folder", tmp_path / "tree")
    assert m.labels == ["neutral", "angry", "happy"] and m.neutral == "neutral"
    assert len(m) == 24 and m.speakers == ["anna", "bob", "carl", "dora"]
    assert m["Angry__bob-1"].emotion == "angry" and m["Angry__bob-1"].speaker == "bob"
    check_disjoint(m, p)
    wav(tmp_path / "tree" / "grumpy" / "anna_9.wav", 0.1)
    with pytest.raises(UserError, match="grumpy: folder name is not a known label"):
        folder.prepare(tmp_path / "tree")


# ---------------------------------------------------------------- synthetic
def test_synthetic_generate_and_prepare(tmp_path):
    out = synthetic.generate(tmp_path / "syn", speakers=4, utterances_per_emotion=2, seed=3)
    assert out == tmp_path / "syn"
    files = sorted(out.glob("*.wav"))
    assert len(files) == 4 * 4 * 2 and files[0].name == "spk00_angry_000.wav"
    m, p = synthetic.prepare(out)
    assert m.labels == ["neutral", "angry", "happy", "sad"] and len(m) == 32
    assert all(1.5 <= u.duration <= 4.0 for u in m)
    assert m["spk01_sad_001"].extra["gender"] == "female"
    check_disjoint(m, p)
    d = p.fold()
    assert speakers_of(m, d.test) == {"spk03"} and speakers_of(m, d.dev) == {"spk02"}
    assert [n for n in p.names if n.startswith("loso")] == [f"loso-spk0{i}" for i in range(4)]
    x, sr = sf.read(files[0])
    assert sr == 16000 and np.abs(x).max() < 1.0 and np.sqrt(np.mean(x ** 2)) > 0.005
    # deterministic, and the seed matters
    again = synthetic.generate(tmp_path / "again", speakers=1, utterances_per_emotion=1, seed=3)
    assert (again / "spk00_angry_000.wav").read_bytes() == files[0].read_bytes()
    other = synthetic.generate(tmp_path / "other", speakers=1, utterances_per_emotion=1, seed=4)
    assert (other / "spk00_angry_000.wav").read_bytes() != files[0].read_bytes()


def test_synthetic_prosody_differs_by_emotion():
    """Emotions shift level and f0 on average, with overlap between single utterances."""
    rng = np.random.default_rng(0)
    spk = synthetic._speaker_traits(0, 0)
    level = {e: [] for e in synthetic.LABELS}
    for e in synthetic.LABELS:
        for _ in range(6):
            x = synthetic.synthesize(rng, e, spk)
            frames = x[: len(x) // 400 * 400].reshape(-1, 400)
            rms = np.sqrt((frames ** 2).mean(1))
            level[e].append(20 * np.log10(rms[rms > rms.max() * 0.1].mean()))
    mean = {e: np.mean(v) for e, v in level.items()}
    assert mean["angry"] > mean["neutral"] > mean["sad"]
    assert min(level["angry"]) < max(level["neutral"]) or min(level["neutral"]) < max(level["sad"])


def test_synthetic_bad_name(tmp_path):
    synthetic.generate(tmp_path, speakers=3, utterances_per_emotion=1)
    wav(tmp_path / "spk01_bored_000.wav", 0.1)
    with pytest.raises(UserError, match="spk01_bored_000.wav: not a synthetic corpus file name"):
        synthetic.prepare(tmp_path)


# ---------------------------------------------------------------- integration on real data
@pytest.mark.integration
@pytest.mark.skipif(not (SHARED / "emodb").is_dir(), reason="../shared/data/emodb absent")
def test_emodb_real():
    m, p = prepare_corpus("emodb", SHARED / "emodb")
    assert len(m) == 535 and len(m.speakers) == 10 and len({u.emotion for u in m}) == 7
    validate(m, p, check_files=True)
    d = p.fold()
    assert speakers_of(m, d.test) == {"emodb-03", "emodb-08"}
    assert len(d.train) + len(d.dev) + len(d.test) == 535
    assert len([n for n in p.names if n.startswith("loso-")]) == 10


@pytest.mark.integration
@pytest.mark.skipif(not (SHARED / "ravdess").is_dir(), reason="../shared/data/ravdess absent")
def test_ravdess_real():
    m, p = prepare_corpus("ravdess", SHARED / "ravdess")
    assert len(m) == 1440 and len(m.speakers) == 24 and len({u.emotion for u in m}) == 8
    validate(m, p, check_files=True)
    assert p.names == ["default"] + [f"cv-{k}" for k in range(1, 7)]
    for f in p.folds:
        assert len(speakers_of(m, f.test)) == 4
    m4, p4 = prepare_corpus("ravdess", SHARED / "ravdess", classes="paper4")
    counts = {lab: sum(u.emotion == lab for u in m4) for lab in m4.labels}
    assert counts == {"neutral": 96, "angry": 192, "happy": 192, "sad": 192} and len(m4) == 672


def test_a_four_class_copy_read_as_seven_classes_is_refused_with_the_option_to_use(tmp_path):
    for spk in ("03", "08", "09", "10"):
        for text, emo in (("a01", "W"), ("a02", "F"), ("a04", "N"), ("a05", "T")):
            wav(tmp_path / "wav" / f"{spk}{text}{emo}a.wav", 0.2, seed=int(spk))
    with pytest.raises(UserError, match=r"no utterance of .*boredom.* in this copy .*use --classes paper4"):
        emodb.prepare(tmp_path)
    m, _ = emodb.prepare(tmp_path, classes="paper4")
    assert sorted(m.labels) == ["angry", "happy", "neutral", "sad"]
