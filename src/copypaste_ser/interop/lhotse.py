"""lhotse interop: CutSet <-> Manifest, and CopyPaste as a lhotse cut transform.

``pip install 'copypaste-ser[lhotse]'`` (lhotse >= 1.33 needs no torchaudio for wav/flac)::

    cuts = manifest_to_cutset(manifest)                 # one MonoCut per utterance
    cp = CutCopyPaste(CopyPaste("n-cp", neutral_label=manifest.label_index("neutral"),
                                piece_length=400, seed=0), labels=manifest.labels)
    dataset = CopyPasteDataset(manifest.labels, cut_transforms=[cp])
    loader = DataLoader(dataset, sampler=SimpleCutSampler(cuts, max_cuts=32), batch_size=None)

Conventions: a cut's first supervision carries the utterance: ``speaker``, and the emotion in
``custom["emotion"]`` (lhotse has no emotion field); ``Utterance.extra`` goes to
``custom["extra"]``. Protocol folds stay outside the CutSet: select a split with
``manifest_to_cutset(manifest, ids=fold.train)``.

The transform does not re-implement CopyPaste: it runs the real ``CopyPaste`` on zero-width
stand-ins (``(n_steps, 0)`` arrays, one time step per ``resolution`` seconds) and turns its
``last_plan`` into ``truncate`` + ``Cut.append``, so schemes, partners, pieces, order and
mode follow augment/copypaste.py exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
from lhotse.cut import Cut
from lhotse.utils import fastcopy

from copypaste_ser.augment.copypaste import CopyPaste
from copypaste_ser.data.manifest import Manifest, Utterance

__all__ = ["manifest_to_cutset", "cutset_to_manifest", "cut_emotion", "CutCopyPaste", "CopyPasteDataset"]


def manifest_to_cutset(manifest: Manifest, ids: Iterable[str] | None = None,
                       root: str | Path | None = None) -> CutSet:
    """One whole-recording MonoCut per utterance (``ids``: a subset, e.g. a fold's train);
    relative audio paths are taken against ``root`` when given."""
    utts = manifest.subset(ids) if ids is not None else list(manifest)
    cuts = []
    for u in utts:
        path = Path(root) / u.audio if root is not None and not Path(u.audio).is_absolute() else Path(u.audio)
        rec = Recording.from_file(path, recording_id=u.id)
        duration = min(u.duration, rec.duration)  # the manifest's rounding may pass the file's end
        sup = SupervisionSegment(id=u.id, recording_id=u.id, start=0.0, duration=duration, channel=0,
                                 speaker=u.speaker, custom={"emotion": u.emotion, "extra": dict(u.extra)})
        cuts.append(MonoCut(id=u.id, start=0.0, duration=duration, channel=0, recording=rec, supervisions=[sup]))
    return CutSet.from_cuts(cuts)


def cut_emotion(cut: Cut) -> str:
    """The emotion a cut carries (its first supervision's ``custom["emotion"]``)."""
    if not cut.supervisions or not (cut.supervisions[0].custom or {}).get("emotion"):
        raise ValueError(f"cut {cut.id}: no supervision with custom['emotion']")
    return cut.supervisions[0].custom["emotion"]


def cutset_to_manifest(cuts: CutSet, name: str, labels: Sequence[str] | None = None,
                       neutral: str | None = "neutral") -> Manifest:
    """A Manifest of whole-file cuts (our manifests have no offsets: a trimmed or mixed cut, or
    one whose audio is not a file, is refused). ``labels`` default to the sorted emotions."""
    utts = []
    for cut in cuts:
        if not isinstance(cut, MonoCut) or cut.recording is None:
            raise ValueError(f"cut {cut.id}: only single-recording cuts map to a manifest")
        sources = cut.recording.sources
        if len(sources) != 1 or sources[0].type != "file":
            raise ValueError(f"cut {cut.id}: its audio is not one file")
        if cut.start > 1e-3 or cut.duration < cut.recording.duration - 0.05:
            raise ValueError(f"cut {cut.id}: covers part of its recording; a manifest holds whole files")
        sup = cut.supervisions[0] if cut.supervisions else None
        if sup is None or sup.speaker is None:
            raise ValueError(f"cut {cut.id}: needs a supervision with a speaker")
        extra = (sup.custom or {}).get("extra") or {}
        utts.append(Utterance(cut.id, str(sources[0].source), sup.speaker, cut_emotion(cut), float(cut.duration),
                              {str(k): str(v) for k, v in extra.items()}))
    labels = list(labels) if labels is not None else sorted({u.emotion for u in utts})
    if neutral is not None and neutral not in labels:
        neutral = None
    return Manifest(name, labels, utts, neutral)


class CutCopyPaste:
    """``CutSet -> CutSet`` transform applying ``copypaste`` to a sampled batch of cuts.

    ``copypaste.piece_length`` counts time steps of ``resolution`` seconds (default 0.01:
    the trainer's 10 ms frames, so ``piece_length=400`` is the paper's 4 s). A concatenation is
    ``piece_a.append(piece_b)`` (a MixedCut); every supervision in it is relabelled with the
    anchor's emotion (the source's is kept in ``custom["source_emotion"]``), so labels keep
    coming from supervisions. ``last_input`` and ``last_labels`` hold the last call's input
    cuts and output label indices (with ``copypaste.last_plan``: what was made from what).
    """

    def __init__(self, copypaste: CopyPaste, labels: Sequence[str], resolution: float = 0.01) -> None:
        self.copypaste = copypaste
        self.labels = list(labels)
        self.resolution = float(resolution)
        self.last_labels: list[int] = []
        self.last_input: list[Cut] = []

    def __call__(self, cuts: CutSet) -> CutSet:
        batch = list(cuts)
        labels = [self.labels.index(cut_emotion(c)) for c in batch]
        steps = [max(1, int(round(c.duration / self.resolution))) for c in batch]
        # zero-width stand-ins: CopyPaste plans on lengths only, its concatenations cost nothing
        _, out_labels = self.copypaste([np.empty((n, 0), dtype=np.uint8) for n in steps], labels)
        plan = self.copypaste.last_plan
        assert plan is not None
        out = []
        for entry in plan.entries:
            if len(entry.sources) == 1:  # unchanged, never cropped
                out.append(batch[entry.sources[0]])
                continue
            emotion = self.labels[labels[entry.anchor]]
            first, second = (self._piece(batch[s], start, n, emotion)
                             for s, (start, n) in zip(entry.sources, entry.pieces))
            out.append(first.append(second))
        self.last_labels, self.last_input = list(out_labels), batch
        return CutSet.from_cuts(out)

    def _piece(self, cut: Cut, start: int, n: int, emotion: str) -> Cut:
        offset = min(start * self.resolution, cut.duration)
        piece = cut.truncate(offset=offset, duration=min(n * self.resolution, cut.duration - offset),
                             keep_excessive_supervisions=True, preserve_id=False)
        # a truncated supervision may reach past the piece; clip it and give it the anchor's label
        sups = [fastcopy(s.trim(piece.duration),
                         custom={**(s.custom or {}), "emotion": emotion, "source_emotion": cut_emotion(cut)})
                for s in piece.supervisions]
        return fastcopy(piece, supervisions=sups)


class CopyPasteDataset(torch.utils.data.Dataset):
    """A minimal map-style dataset for lhotse samplers (``batch_size=None`` in the DataLoader):
    takes a sampled CutSet, applies ``cut_transforms``, and returns padded waveforms.

    Returns ``{"inputs": (B, T) float32, "lengths": (B,) samples, "labels": (B,) int64,
    "cuts": CutSet}``; labels come from each output cut's first supervision.
    """

    def __init__(self, labels: Sequence[str], cut_transforms: Sequence[Callable[[CutSet], CutSet]] = ()) -> None:
        self.labels = list(labels)
        self.cut_transforms = list(cut_transforms)

    def __getitem__(self, cuts: CutSet) -> dict[str, Any]:
        for transform in self.cut_transforms:
            cuts = transform(cuts)
        audio = [torch.from_numpy(np.ascontiguousarray(c.load_audio()[0], dtype=np.float32)) for c in cuts]
        lengths = torch.tensor([len(a) for a in audio], dtype=torch.int64)
        inputs = torch.nn.utils.rnn.pad_sequence(audio, batch_first=True)
        labels = torch.tensor([self.labels.index(cut_emotion(c)) for c in cuts], dtype=torch.int64)
        return {"inputs": inputs, "lengths": lengths, "labels": labels, "cuts": cuts}
