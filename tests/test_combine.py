"""Training across corpora: combining prepared corpora (data/combine.py) and balanced epochs."""

import json
import subprocess
import sys
from collections import Counter

import pytest

from copypaste_ser.data.combine import combine_corpora
from copypaste_ser.data.manifest import Fold, Manifest, Protocol, Utterance, load_corpus, save_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.features.batches import Item
from copypaste_ser.training.trainset import balanced_items


def corpus(tmp_path, name, labels, speakers, per=3):
    utts = [Utterance(f"{s}_{lab}_{k}", f"/audio/{name}/{s}_{lab}_{k}.wav", s, lab, 1.0)
            for s in speakers for lab in labels for k in range(per)]
    manifest = Manifest(name, list(labels), utts)
    test = {u.id for u in utts if u.speaker == speakers[-1]}
    fold = Fold("default", [u.id for u in utts if u.id not in test], [], sorted(test))
    save_corpus(tmp_path / name, manifest, Protocol([fold], "default"))
    return tmp_path / name


def test_corpora_combine_on_shared_labels_with_leave_one_corpus_out_folds(tmp_path):
    a = corpus(tmp_path, "alpha", ["neutral", "angry", "happy", "sad", "fear"], [f"a{i}" for i in range(10)])
    b = corpus(tmp_path, "beta", ["sad", "neutral", "angry", "happy"], [f"b{i}" for i in range(6)])
    c = corpus(tmp_path, "gamma", ["neutral", "angry", "happy", "sad"], ["g0", "g1"])
    manifest, protocol = combine_corpora([a, b, c])
    assert manifest.labels == ["neutral", "angry", "happy", "sad"]  # fear is not in every corpus
    assert not any(u.emotion == "fear" for u in manifest)
    assert {u.extra["corpus"] for u in manifest} == {"alpha", "beta", "gamma"}
    assert all(u.id.startswith(u.extra["corpus"] + "-") and u.speaker.startswith(u.extra["corpus"] + "-")
               for u in manifest)
    assert protocol.names == ["loco-alpha", "loco-beta", "loco-gamma", "all-corpora"]
    final = protocol.fold("all-corpora")
    assert {manifest[i].extra["corpus"] for i in final.train} == {"alpha", "beta", "gamma"}
    assert final.dev and final.test and not {manifest[i].speaker for i in final.dev} & {manifest[i].speaker for i in final.test}
    for fold in protocol.folds[:-1]:
        held_out = fold.name[len("loco-"):]
        assert {manifest[i].extra["corpus"] for i in fold.test} == {held_out}
        assert len(fold.test) == sum(u.extra["corpus"] == held_out for u in manifest)
        assert held_out not in {manifest[i].extra["corpus"] for i in fold.train + fold.dev}
        spk = {s: {manifest[i].speaker for i in getattr(fold, s)} for s in ("train", "dev", "test")}
        assert not spk["train"] & spk["dev"] and not spk["train"] & spk["test"] and not spk["dev"] & spk["test"]
    dev_corpora = Counter(manifest[i].extra["corpus"] for i in protocol.fold("loco-gamma").dev)
    assert set(dev_corpora) == {"alpha", "beta"}  # two-speaker gamma gives its speakers to training only
    assert len({manifest[i].speaker for i in protocol.fold("loco-beta").dev}) == 2  # 15 % of alpha's 10


def test_labels_a_corpus_lacks_and_a_corpus_given_twice_are_one_line(tmp_path):
    a = corpus(tmp_path, "alpha", ["neutral", "angry", "fear"], ["a0", "a1", "a2"])
    b = corpus(tmp_path, "beta", ["neutral", "angry"], ["b0", "b1", "b2"])
    with pytest.raises(UserError, match="--labels: corpus 'beta' has no fear"):
        combine_corpora([a, b], labels=["neutral", "fear"])
    with pytest.raises(UserError, match="corpus 'alpha' is given twice"):
        combine_corpora([a, a])


def test_the_combine_command_writes_a_prepared_corpus_and_refuses_to_replace_it(tmp_path):
    a = corpus(tmp_path, "alpha", ["neutral", "angry"], ["a0", "a1", "a2"])
    b = corpus(tmp_path, "beta", ["neutral", "angry"], ["b0", "b1", "b2"])
    out = tmp_path / "both"

    def run():
        return subprocess.run([sys.executable, "-m", "copypaste_ser", "combine", str(a), str(b), "--out", str(out)],
                              capture_output=True, text=True, timeout=120)

    done = run()
    assert done.returncode == 0, done.stderr
    manifest, protocol = load_corpus(out)
    assert len(manifest) == 36 and protocol.names == ["loco-alpha", "loco-beta", "all-corpora"]
    before = (out / "manifest.jsonl").read_bytes()
    again = run()
    assert again.returncode == 2 and "already holds a prepared corpus; pass --force" in again.stderr
    assert (out / "manifest.jsonl").read_bytes() == before
    assert json.loads((out / "corpus.json").read_text())["labels"] == ["neutral", "angry"]


def test_balanced_epochs_weigh_every_corpus_and_class_alike_and_repeat_after_a_resume():
    utts = ([Utterance(f"a{i}", "x", "s", "neutral", 1.0, {"corpus": "big"}) for i in range(900)]
            + [Utterance(f"b{i}", "x", "s", "angry", 1.0, {"corpus": "big"}) for i in range(60)]
            + [Utterance(f"c{i}", "x", "t", "neutral", 1.0, {"corpus": "small"}) for i in range(40)])
    manifest = Manifest("combined", ["neutral", "angry"], utts)
    items = [Item(u.id, manifest.label_index(u.emotion)) for u in utts]
    assert balanced_items(items, manifest, "none", 0, 1) == items
    drawn = balanced_items(items, manifest, "corpus+class", 0, 1)
    assert len(drawn) == len(items)
    groups = Counter((manifest[it.utt_id].extra["corpus"], it.label) for it in drawn)
    assert set(groups) == {("big", 0), ("big", 1), ("small", 0)}
    assert max(groups.values()) - min(groups.values()) < 0.1 * len(items)  # each near a third, not 90 %
    by_class = Counter(it.label for it in balanced_items(items, manifest, "class", 0, 1))
    assert abs(by_class[0] - by_class[1]) < 0.1 * len(items)
    assert balanced_items(items, manifest, "corpus+class", 0, 1) == drawn
    assert balanced_items(items, manifest, "corpus+class", 0, 2) != drawn


def test_within_keeps_one_corpus_folds_and_adds_the_others_to_training(tmp_path):
    a = corpus(tmp_path, "alpha", ["neutral", "angry", "happy", "fear"], [f"a{i}" for i in range(4)])
    b = corpus(tmp_path, "beta", ["neutral", "angry", "happy"], ["b0", "b1", "b2"])
    manifest, protocol = combine_corpora([a, b], within="alpha")
    own = load_corpus(a)[1].fold("default")
    assert protocol.names == ["default"] and protocol.default == "default"
    fold = protocol.fold("default")
    # alpha's test speaker is tested, on the kept labels only (no fear), and never trained on
    assert fold.test == [f"alpha-{i}" for i in own.test if "_fear_" not in i]
    assert {manifest[i].speaker for i in fold.test} == {"alpha-a3"}
    assert not {manifest[i].speaker for i in fold.train} & {"alpha-a3"}
    corpora = Counter(manifest[i].extra["corpus"] for i in fold.train)
    assert corpora == {"alpha": 27, "beta": 27}  # alpha's three training speakers x 3 labels x 3, all of beta
    with pytest.raises(UserError, match="--within: 'gamma' is not one of the corpora given"):
        combine_corpora([a, b], within="gamma")
