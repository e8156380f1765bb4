"""The training loop: Adam + cross-entropy, dev scores each epoch, best-epoch model, resume, DDP.

One loop serves both tasks of ``TrainConfig.task`` (task.py: emotion on a corpus fold, or
speaker-ID pretraining, speaker.py). Its parts live beside it: the task (task.py), the
training items and their features (trainset.py), the model, optimiser and model file
(model_setup.py), the run folder, its marker and lock (rundir.py) and the choice of the
kept model (selection.py).

Run directory::

    config.yaml    resolved TrainConfig          history.jsonl  one line per epoch
    last.pt        resume state (atomic)         model.pt       best-dev model file
    metrics.json   clean test scores             confusion.png, curves.png
    run.json       status, timings, provenance
    .copypaste-ser-run, .copypaste-ser.lock   marker and lock (rundir.py: what --force may delete)

Under ``torchrun`` every rank trains on its slice of each global batch, built and
augmented identically on all ranks (DistributedDataParallel, gloo on CPU, nccl on GPU with
SyncBatchNorm; distributed.py says what differs on CPU); rank 0 alone scores dev and
writes files. Each epoch reseeds torch from (seed, epoch), so a resumed run repeats the
uninterrupted one exactly.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from copypaste_ser.augment.pipeline import training_augmentation
from copypaste_ser.data.manifest import Manifest, fold_test_fingerprint, load_corpus
from copypaste_ser.errors import UserError
from copypaste_ser.features.batches import TrainBatches
from copypaste_ser.features.cache import extract_features
from copypaste_ser.features.mfcc import mean_normalize
from copypaste_ser.files.atomic import atomic_write_text
from copypaste_ser.metrics import (
    plot_confusion,
    plot_curves,
    prediction_warnings,
    score,
)
from copypaste_ser.models.checkpoint import FORMAT, load_checkpoint, save_atomic
from copypaste_ser.models.placement import place
from copypaste_ser.models.scoring import predict_proba
from copypaste_ser.training.config import TrainConfig
from copypaste_ser.training.distributed import dist_setup, global_mean_loss, wrap_model
from copypaste_ser.training.model_setup import (
    build_emotion_model,
    check_run_inputs,
    freeze_encoder_norms,
    make_optimizer,
    model_file,
    set_epoch_lr,
)
from copypaste_ser.training.reproducible import make_deterministic
from copypaste_ser.training.rundir import (
    claim,
    made_with,
    mark_stopped,
    prepare_run_dir,
    run_status,
    tested_elsewhere,
)
from copypaste_ser.training.task import Task, make_task
from copypaste_ser.training.trainset import (
    balanced_items,
    load_train_features,
    model_inputs,
    sample_noisy,
)
from copypaste_ser.training.weight_selection import ModelSelection


# ---------------------------------------------------------------- training
def train(cfg: TrainConfig, out_dir: str | Path, force: bool = False, progress: bool = True) -> dict:
    """Train one model; returns the clean test metrics (also in ``out_dir/metrics.json``);
    for ``cfg.task == "speaker"`` the held-out speaker-ID accuracy. The run folder stays
    locked until it returns (see rundir.py)."""
    with ExitStack() as held:
        try:
            return _train(cfg, Path(out_dir), force, progress, held)
        except BaseException as e:
            mark_stopped(Path(out_dir), e)  # never leave a run marked "running"
            raise


def _train(cfg: TrainConfig, out: Path, force: bool, progress: bool, held: ExitStack) -> dict:
    rank, world, device = dist_setup()
    make_deterministic(device)  # same seed, same weights on CPU (reproducible.py)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    manifest, protocol = load_corpus(Path(cfg.data))
    task = make_task(cfg, manifest, protocol)
    _refuse_impossible(cfg, manifest, task)
    check_run_inputs(cfg)  # noise corpus, init model: refused before the run folder is made
    resume = prepare_run_dir(out, cfg, force, held) if rank == 0 else True
    if world > 1:
        dist.barrier()
    show = progress and rank == 0

    torch.manual_seed(cfg.seed)
    stores, clean_items, noisy_items, dev_x = _load_inputs(cfg, manifest, task, rank, world, show)
    mean_norm = cfg.feature_config.mean_norm
    model, provenance = build_emotion_model(cfg, len(task.labels))
    if hasattr(model, "fit_input_stats"):  # standardise with training-set statistics (resume reloads them)
        # a generator: models without statistics to fit (most) never normalise a copy of the set
        model.fit_input_stats(mean_normalize(x) if mean_norm else x for x in stores["clean"].values())
    place(model, device)
    loop = _EpochLoop(cfg, out, manifest, task, model, make_optimizer(model, cfg),
                      ModelSelection(cfg.select, cfg.epochs, cfg.average_fraction, cfg.smooth_epochs),
                      device, provenance, dev_x, [task.targets[i] for i in task.dev], show)
    state = loop.resume(rank) if resume else _fresh_state()
    net = wrap_model(model, world)

    neutral = manifest.label_index(manifest.neutral) if manifest.neutral else None
    augment = training_augmentation(cfg, neutral, str(out / "config.yaml"))
    status = {"status": "running", "world_size": world, "provenance": provenance}
    if rank == 0:
        atomic_write_text(out / "run.json", json.dumps(status, indent=1))

    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        t0 = time.time()
        set_epoch_lr(loop.optimizer, cfg, epoch)
        items = (balanced_items(clean_items, manifest, cfg.balance, cfg.seed, epoch)
                 + sample_noisy(noisy_items, cfg, epoch))
        batches = TrainBatches(items, lambda it: stores[it.condition][it.utt_id], cfg.batch_size,
                               cfg.chunk_frames, augment, seed=cfg.seed, rank=rank, world_size=world,
                               mean_norm=mean_norm)
        losses, augmented = loop.train_epoch(net, batches, augment, epoch, world)
        if rank == 0:
            loop.end_epoch(state, epoch, t0, losses, augmented / batches.num_batches(), len(items))
    if world > 1:
        dist.barrier()
    result: dict = {}
    if rank == 0:
        result = finish_run(out, cfg, manifest, task, state, device, status, show)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def _refuse_impossible(cfg: TrainConfig, manifest: Manifest, task: Task) -> None:
    if task.kind == "speaker" and cfg.copypaste != "none":
        raise UserError(f"{cfg.data}: CopyPaste needs emotion labels; speaker pretraining takes none")
    if cfg.copypaste in ("n-cp", "n+se-cp") and manifest.neutral is None:
        raise UserError(f"{cfg.data}: corpus {manifest.name!r} has no neutral label; N-CP needs one")


def _load_inputs(cfg: TrainConfig, manifest: Manifest, task: Task, rank: int, world: int,
                 show: bool) -> tuple[dict, list, list, list]:
    """Training stores and items, and the dev inputs; under DDP rank 0 fills the feature
    cache first and the other ranks then read it."""
    for turn in ((0,) if world == 1 else (0, 1)):
        if (rank == 0) == (turn == 0):
            stores, clean_items, noisy_items = load_train_features(cfg, manifest, task, show)
            dev_feats = model_inputs(extract_features(manifest.subset(task.dev), cfg.feature_config,
                                                      Path(cfg.data), progress=show), manifest, task.dev, cfg)
        if world > 1:
            dist.barrier()
    return stores, clean_items, noisy_items, [dev_feats[i] for i in task.dev]


def _fresh_state() -> dict:
    return {"epoch": 0, "best_score": -1.0, "best_epoch": 0, "history": [], "elapsed": 0.0}


@dataclass
class _EpochLoop:
    """What stays fixed across the epochs of one run: one epoch's training, then (rank 0)
    its dev score, the kept model and the resume checkpoint."""

    cfg: TrainConfig
    out: Path
    manifest: Manifest
    task: Task
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    selection: ModelSelection
    device: torch.device
    provenance: dict
    dev_x: list
    dev_y: list[int]
    show: bool

    def __post_init__(self) -> None:
        # reduction none: averaged over the global batch
        self.loss_fn = torch.nn.CrossEntropyLoss(reduction="none", label_smoothing=self.cfg.label_smoothing)

    def resume(self, rank: int) -> dict:
        """The state of the checkpoint in the run folder, loaded into model, optimiser and
        selection; a fresh state when there is none."""
        if not (self.out / "last.pt").is_file():
            return _fresh_state()
        ckpt = load_checkpoint(self.out / "last.pt")
        self.model.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        state = ckpt["state"]
        if "selection" in ckpt or "average" in ckpt:  # "average"/"smoothed": checkpoints of 0.1 runs
            self.selection.load_state_dict(ckpt.get("selection") or ckpt)
        state.setdefault("best_score", state.pop("best_f1", -1.0))  # checkpoints of older versions
        if rank == 0:  # the checkpoint's history is authoritative: drop epochs after it
            atomic_write_text(self.out / "history.jsonl", "".join(json.dumps(h) + "\n" for h in state["history"]))
        if self.show:
            print(f"resuming {self.out} after epoch {state['epoch']}")
        return state

    def train_epoch(self, net: torch.nn.Module, batches: TrainBatches, augment, epoch: int,
                    world: int) -> tuple[list[float], int]:
        """One pass over the batches; the losses and how many batches CopyPaste changed."""
        torch.manual_seed(self.cfg.seed * 100003 + epoch)  # dropout: same stream after a resume
        net.train()
        if self.cfg.freeze_encoder:
            freeze_encoder_norms(self.model)
        losses, augmented = [], 0
        bar = tqdm(batches.epoch(epoch), total=batches.num_batches(), disable=None if self.show else True,
                   desc=f"epoch {epoch}/{self.cfg.epochs}", leave=False)
        for x, lengths, y in bar:
            plan = getattr(augment, "last_plan", None)  # SpecAugment alone has no CopyPaste plan
            if plan is not None and plan.augmented:
                augmented += 1
            loss = global_mean_loss(self.loss_fn(net(x.to(self.device), lengths.to(self.device)),
                                                 y.to(self.device)), batches.global_size, world)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())  # about the mean loss of this rank's shard
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        return losses, augmented

    def end_epoch(self, state: dict, epoch: int, t0: float, losses: list[float], augmented_share: float,
                  train_items: int) -> None:
        """Dev score, the kept model, the checkpoint and the history line of one epoch."""
        task, mean_norm = self.task, self.cfg.feature_config.mean_norm
        probs = predict_proba(self.model, self.dev_x, self.device, mean_norm=mean_norm)
        dev = score(self.dev_y, probs.argmax(1).tolist(), task.labels)
        state["elapsed"] += time.time() - t0
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)),
                  **{f"dev_{k}": dev[k] for k in task.report},
                  "copypaste_batches": augmented_share,
                  "train_items": train_items, "seconds": round(time.time() - t0, 2)}
        state["history"].append(record)
        choice = self.selection.after_epoch(
            epoch, dev[task.metric], self.model, state["best_score"],
            lambda w: dev_score(_with_weights(self.model, w), self.dev_x, self.dev_y, task, self.device, mean_norm))
        if choice is not None:
            state["best_score"], state["best_epoch"], weights = choice
            kept = self.model if weights is None else _with_weights(self.model, weights)
            if weights is not None and self.cfg.select == "average":
                record[f"dev_{task.metric}_average"] = state["best_score"]
            save_atomic(model_file(kept, self.manifest, self.cfg, self.provenance, kind=task.kind,
                                   labels=task.labels), self.out / "model.pt")
        state["epoch"] = epoch
        save_atomic({"format": FORMAT, "kind": "resume", "state_dict": self.model.state_dict(),
                     "optimizer": self.optimizer.state_dict(), "state": state,
                     "selection": self.selection.state_dict()}, self.out / "last.pt")
        with open(self.out / "history.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.show:
            tqdm.write(f"epoch {epoch:3d}  loss {record['train_loss']:.3f}  dev {task.metric} "
                       f"{100 * dev[task.metric]:.1f} %{'  *' if choice is not None else ''}  ({record['seconds']:.1f} s)")


def _with_weights(model: torch.nn.Module, weights: dict) -> torch.nn.Module:
    kept = copy.deepcopy(model)
    kept.load_state_dict(weights)
    return kept


def dev_score(model: torch.nn.Module, dev_x: list, dev_y: list[int], task: Task, device: torch.device,
              mean_norm: bool) -> float:
    probs = predict_proba(model, dev_x, device, mean_norm=mean_norm)
    return score(dev_y, probs.argmax(1).tolist(), task.labels)[task.metric]


def finish_run(out: Path, cfg: TrainConfig, manifest: Manifest, task: Task, state: dict,
               device: torch.device, status: dict, show: bool) -> dict:
    from copypaste_ser.models.scoring import model_from_file
    from copypaste_ser.training.held_out import evaluate_ids, evaluate_speaker

    best = place(model_from_file(load_checkpoint(out / "model.pt"), str(out / "model.pt")), device)
    if task.kind == "speaker":
        metrics = evaluate_speaker(best, manifest, task, cfg, device=device)
    else:
        metrics = evaluate_ids(best, manifest, task.test, cfg, device=device, progress=show)
        metrics["test_set"] = fold_test_fingerprint(manifest, task.test)  # which fold assignment it tested
    metrics.update({"best_epoch": state["best_epoch"], f"dev_{task.metric}": state["best_score"],
                    "train_seconds": round(state["elapsed"], 1)})
    if getattr(best, "mix", None) is not None:  # which encoder depth the head learned to read
        metrics["layer_weights"] = {str(k): round(float(w), 4) for k, w in
                                    zip(best.config.layers, best.mix.weights().detach())}
    if task.kind == "emotion":
        metrics["warnings"] = prediction_warnings(metrics, state["best_score"])
        for w in metrics["warnings"]:  # always shown: a collapsed model must not pass unnoticed
            print(f"warning: {out}: {w}", file=sys.stderr)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1))
    if task.kind == "emotion":
        plot_confusion(metrics, out / "confusion.png",
                       f"{manifest.name} test, weighted F1 {100 * metrics['weighted_f1']:.1f} %")
    plot_curves(state["history"], out / "curves.png")
    status.update(status="complete", best_epoch=state["best_epoch"], train_seconds=round(state["elapsed"], 1))
    atomic_write_text(out / "run.json", json.dumps(status, indent=1))
    if show:
        what = "held-out speaker-ID accuracy" if task.kind == "speaker" else "test weighted F1"
        value = metrics["accuracy"] if task.kind == "speaker" else metrics["weighted_f1"]
        kept = ("weights of the last epochs averaged" if cfg.select == "average"
                else f"best dev epoch {state['best_epoch']}")
        print(f"{what} {100 * value:.2f} % ({kept}) -> {out}")
    return metrics


def summarize(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def train_seeds(cfg: TrainConfig, out_dir: str | Path, seeds: list[int], force: bool = False,
                progress: bool = True, seed_folders: bool = False) -> dict:
    """One run per seed (OUT itself for one seed, OUT/seed-N for several or with
    ``seed_folders``); mean +- std of test wF1.

    With seed folders a finished seed of the same config is reused, so an interrupted series
    resumes and a later seed is added beside the finished ones.
    """
    import dataclasses

    out = Path(out_dir)
    if len(seeds) == 1 and not seed_folders:
        m = train(dataclasses.replace(cfg, seed=seeds[0]), out, force=force, progress=progress)
        if not m:
            return {}
        return {"runs": [str(out)], "weighted_f1": [m["weighted_f1"]],
                "text": f"test weighted F1 {100 * m['weighted_f1']:.2f} %"}
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 alone prepares the folder
        claim(out, "seeds", force, cfg.data)  # --force clears only the tool's files (rundir.py)
    scores, runs, seconds = [], [], 0.0
    for s in seeds:
        run = out / f"seed-{s}"
        scfg = dataclasses.replace(cfg, seed=s)
        if run_status(run) == "complete" and made_with(run, scfg):
            if tested_elsewhere(run, scfg):
                raise UserError(f"{run}: was tested on other utterances than fold {scfg.fold} of {scfg.data} holds "
                                f"now (the corpus was prepared again); pass --force to train the seeds again")
            m = json.loads((run / "metrics.json").read_text())
        else:  # a cut run resumes; a finished run of another config needs --force (train's message)
            m = train(scfg, run, progress=progress)
        if not m:  # not rank 0
            return {}
        scores.append(m["weighted_f1"])
        seconds += m.get("train_seconds", 0.0)
        runs.append(str(run))
    mean, std = summarize(scores)
    summary = {"runs": runs, "seeds": list(seeds), "weighted_f1": scores, "mean": mean, "std": std,
               "train_seconds": round(seconds, 1),
               "text": f"test weighted F1 {100 * mean:.2f} +- {100 * std:.2f} % over seeds {list(seeds)} "
                       f"({', '.join(f'{100 * v:.2f}' for v in scores)})"}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    return summary
