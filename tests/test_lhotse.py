"""lhotse interop on real cuts (the synthetic corpus's wav files): CutSet <-> Manifest, and
CopyPaste as a cut transform inside a lhotse sampler + Dataset + torch DataLoader."""

import pytest

pytest.importorskip("lhotse")

import torch  # noqa: E402
from lhotse import CutSet  # noqa: E402
from lhotse.dataset import SimpleCutSampler  # noqa: E402

from copypaste_ser.augment import CopyPaste  # noqa: E402
from copypaste_ser.data.manifest import load_corpus  # noqa: E402
from copypaste_ser.interop.lhotse import (  # noqa: E402
    CopyPasteDataset,
    CutCopyPaste,
    cut_emotion,
    cutset_to_manifest,
    manifest_to_cutset,
)


def test_cutset_round_trips_through_manifest(synthetic_corpus, tmp_path):
    manifest, protocol = load_corpus(synthetic_corpus)
    cuts = manifest_to_cutset(manifest)
    assert len(cuts) == len(manifest)
    first = manifest.utterances[0]
    cut = cuts[first.id]
    assert cut_emotion(cut) == first.emotion and cut.supervisions[0].speaker == first.speaker
    assert cut.load_audio().shape[1] == pytest.approx(first.duration * cut.sampling_rate, abs=2)
    cuts.to_file(tmp_path / "cuts.jsonl.gz")  # through lhotse's own file format too
    back = cutset_to_manifest(CutSet.from_file(tmp_path / "cuts.jsonl.gz"), manifest.name,
                              manifest.labels, manifest.neutral)
    assert back.labels == manifest.labels and back.neutral == manifest.neutral
    assert [(u.id, u.audio, u.speaker, u.emotion, u.extra) for u in back] == \
           [(u.id, u.audio, u.speaker, u.emotion, u.extra) for u in manifest]
    assert [u.duration for u in back] == pytest.approx([u.duration for u in manifest], abs=1e-3)
    train = manifest_to_cutset(manifest, ids=protocol.fold().train)  # a fold's split, chosen outside
    assert set(train.ids) == set(protocol.fold().train)
    with pytest.raises(ValueError, match="whole files"):
        cutset_to_manifest(CutSet.from_cuts([cut.truncate(offset=0.1, duration=0.2)]), "x")


@pytest.mark.parametrize("scheme", ["n-cp", "se-cp", "n+se-cp"])
def test_copypaste_runs_inside_a_lhotse_dataloader(synthetic_corpus, scheme):
    manifest, _ = load_corpus(synthetic_corpus)
    neutral = manifest.label_index(manifest.neutral)
    cuts = manifest_to_cutset(manifest)
    piece = 50  # time steps of 10 ms: 0.5 s pieces
    transform = CutCopyPaste(CopyPaste(scheme, neutral_label=neutral, p=1.0, piece_length=piece, seed=0),
                             manifest.labels)
    sampler = SimpleCutSampler(cuts, max_cuts=8, shuffle=True, seed=0)
    loader = torch.utils.data.DataLoader(CopyPasteDataset(manifest.labels, [transform]), sampler=sampler,
                                         batch_size=None, num_workers=0)
    appended = 0
    for batch in loader:
        out = list(batch["cuts"])
        plan = transform.copypaste.last_plan
        assert len(out) == len(plan.entries) == len(batch["labels"])
        assert batch["labels"].tolist() == transform.last_labels
        assert batch["inputs"].shape[0] == len(out) and int(batch["lengths"].max()) == batch["inputs"].shape[1]
        for cut, entry, label in zip(out, plan.entries, batch["labels"].tolist()):
            if len(entry.sources) == 1:
                continue
            appended += 1
            assert manifest.labels[label] == cut_emotion(cut)
            assert {s.custom["emotion"] for s in cut.supervisions} == {cut_emotion(cut)}
            # each piece: `n` 10 ms steps from `start`, clipped at its source's end
            src = [transform.last_input[k] for k in entry.sources]
            assert cut.duration == pytest.approx(
                sum(min(n * 0.01, c.duration - start * 0.01) for c, (start, n) in zip(src, entry.pieces)), abs=2 / 16000)  # lhotse rounds to samples
            assert [sup.speaker for sup in cut.supervisions] == [c.supervisions[0].speaker for c in src]
            assert int(batch["lengths"][out.index(cut)]) == pytest.approx(cut.duration * 16000, abs=2)
            sources = [s.custom["source_emotion"] for s in cut.supervisions]
            assert sources == [cut_emotion(c) for c in src]
            if plan.scheme == "n-cp":  # the partner is neutral
                assert manifest.neutral in sources
            else:
                assert set(sources) == {cut_emotion(cut)}
    assert appended > 0
