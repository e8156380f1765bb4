"""Training: Adam + cross-entropy, dev weighted F1 each epoch, best-epoch model, resume, DDP.

One loop serves two tasks (``TrainConfig.task``, see :class:`Task`): ``emotion`` (the
corpus fold; best epoch by dev weighted F1; model kind "emotion") and ``speaker``
(speaker-ID pretraining on a speaker corpus, see speaker.py; held-out utterances of the
training speakers as dev; best epoch by dev accuracy; model kind "speaker").

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
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.modules.batchnorm import _NormBase
import yaml
from tqdm.auto import tqdm

from .augment.pipeline import training_augmentation
from .checkpoint import FORMAT, load_checkpoint, save_atomic
from .config import TrainConfig
from .data import Item, TrainBatches
from .distributed import dist_setup, global_mean_loss, wrap_model
from .errors import UserError
from .features import extract_features
from .inference import predict_proba
from .manifest import Manifest, Protocol, atomic_write_text, load_corpus
from .metrics import plot_confusion, plot_curves, score
from .reproducible import make_deterministic
from .selection import ModelSelection
from .rundir import claim, mark_stopped, prepare_run_dir, run_status


# ---------------------------------------------------------------- task
@dataclass
class Task:
    """What a run learns: class names, the utterance ids of each split and their classes."""

    kind: str                  # "emotion" | "speaker": also the model file's kind
    labels: list[str]
    train: list[str]
    dev: list[str]
    test: list[str]
    targets: dict[str, int]    # utterance id -> class index
    report: tuple[str, ...]    # dev scores kept per epoch; the first picks the best epoch

    @property
    def metric(self) -> str:
        return self.report[0]


def make_task(cfg: TrainConfig, manifest: Manifest, protocol: Protocol) -> Task:
    if cfg.task == "speaker":
        from .speaker import speaker_task
        return speaker_task(manifest, source=cfg.data)
    if cfg.task != "emotion":
        raise UserError(f"unknown task {cfg.task!r}: choose emotion or speaker")
    fold = protocol.fold(cfg.fold)
    from .corpora.folds import check_fold
    check_fold(manifest, fold, cfg.data)  # one line now, not a traceback after epoch 1
    targets = {i: manifest.label_index(manifest[i].emotion) for i in fold.train + fold.dev + fold.test}
    return Task("emotion", list(manifest.labels), fold.train, fold.dev, fold.test, targets,
                ("weighted_f1", "uar"))


# ---------------------------------------------------------------- data
def build_items(task: Task, ids: list[str], condition: str = "clean") -> list[Item]:
    return [Item(i, task.targets[i], condition) for i in ids]


def load_train_features(cfg: TrainConfig, manifest: Manifest, task: Task, progress: bool):
    """Features of the training items: clean plus, with noise_aug, the six noisy copies."""
    data_dir = Path(cfg.data)
    train_ids = task.train
    utts = manifest.subset(train_ids)
    stores = {"clean": extract_features(utts, cfg.feature_config, data_dir, progress=progress).load_all()}
    items = build_items(task, train_ids)
    noisy: list[Item] = []
    if cfg.noise_aug:
        from .augment.noise import training_copies
        from .corpora.musan import noise_split_for
        if not cfg.noise_root:
            raise UserError("--noise-aug needs --noise-root, a folder in MUSAN layout (noise/, music/)")
        key, sets = noise_split_for(Path(cfg.noise_root), data_dir)
        for cond in training_copies(sets):
            name = f"{key}-{cond.name}"
            store = extract_features(utts, cfg.feature_config, data_dir, condition=name,
                                     transform=cond, progress=progress)
            stores[name] = store.load_all()
            noisy += build_items(task, train_ids, name)
    return stores, items, noisy


# ---------------------------------------------------------------- model
def build_emotion_model(cfg: TrainConfig, num_classes: int) -> tuple[torch.nn.Module, dict]:
    """The run's model (emotion or speaker classes) and its provenance: random, or from
    ``cfg.init`` (a speaker model file or "resemblyzer", see transfer.py)."""
    from .models import PRESETS, ModelConfig, build_model

    if cfg.init:
        from .transfer import emotion_model_from_speaker
        model, provenance = emotion_model_from_speaker(cfg.init, num_classes, cfg.feature_config)
        init_width = getattr(getattr(model, "config", None), "width", None)
        if cfg.width and init_width is not None and init_width != cfg.width:
            raise UserError(f"{cfg.init}: speaker model has width {init_width} but this run asks for width "
                            f"{cfg.width}; leave width unset or pretrain with --width {cfg.width}")
        return model, provenance
    if cfg.preset not in PRESETS:
        raise UserError(f"unknown model preset {cfg.preset!r}: choose one of {', '.join(PRESETS)}")
    overrides = {"width": cfg.width} if cfg.width else {}
    mcfg = ModelConfig(**{**PRESETS[cfg.preset], **overrides, "feat_dim": cfg.feature_config.dim,
                          "num_classes": num_classes})
    return build_model(mcfg), {"init": "random"}


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    head = [p for n, p in model.named_parameters() if n.startswith("output.")]
    body = [p for n, p in model.named_parameters() if not n.startswith("output.")]
    # AdamW only with weight decay, so runs without it stay the paper's Adam
    opt = (lambda g: torch.optim.AdamW(g, lr=cfg.lr, weight_decay=cfg.weight_decay)) if cfg.weight_decay \
        else (lambda g: torch.optim.Adam(g, lr=cfg.lr))
    if cfg.freeze_encoder:
        for p in body:
            p.requires_grad_(False)
        return opt(head)
    return opt([{"params": body, "lr": cfg.lr * cfg.encoder_lr_scale}, {"params": head, "lr": cfg.lr}])


def freeze_encoder_norms(model: torch.nn.Module) -> None:
    """Frozen means frozen: normalisation layers outside the head (those make_optimizer
    freezes) use and keep their running statistics. Call after every ``model.train()``."""
    for name, module in model.named_modules():
        if isinstance(module, _NormBase) and not name.startswith("output"):
            module.eval()


def model_file(model: torch.nn.Module, manifest: Manifest, cfg: TrainConfig, provenance: dict,
               kind: str = "emotion", labels: list[str] | None = None) -> dict:
    return {"format": FORMAT, "kind": kind,
            "model": {"arch": getattr(model, "arch", "thin-resnet34"), "config": model.config.to_dict()},
            "labels": list(labels if labels is not None else manifest.labels), "corpus": manifest.name,
            "neutral": manifest.neutral, "features": dict(cfg.features), "train": cfg.to_dict(),
            "provenance": provenance,
            "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}


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
    if task.kind == "speaker" and cfg.copypaste != "none":
        raise UserError(f"{cfg.data}: CopyPaste needs emotion labels; speaker pretraining takes none")
    if cfg.copypaste in ("n-cp", "n+se-cp") and manifest.neutral is None:
        raise UserError(f"{cfg.data}: corpus {manifest.name!r} has no neutral label; N-CP needs one")
    resume = prepare_run_dir(out, cfg, force, held) if rank == 0 else True
    if world > 1:
        dist.barrier()
    show = progress and rank == 0

    torch.manual_seed(cfg.seed)
    # rank 0 fills the feature cache first; the other ranks then read it
    for turn in ((0,) if world == 1 else (0, 1)):
        if (rank == 0) == (turn == 0):
            stores, clean_items, noisy_items = load_train_features(cfg, manifest, task, show)
            dev_feats = extract_features(manifest.subset(task.dev), cfg.feature_config, Path(cfg.data),
                                         progress=show)
        if world > 1:
            dist.barrier()
    dev_x = [dev_feats[i] for i in task.dev]
    dev_y = [task.targets[i] for i in task.dev]
    mean_norm = cfg.feature_config.mean_norm

    model, provenance = build_emotion_model(cfg, len(task.labels))
    if hasattr(model, "fit_input_stats"):  # standardise with training-set statistics (resume reloads them)
        model.fit_input_stats(list(stores["clean"].values()))
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    selection = ModelSelection(cfg.select, cfg.epochs, cfg.average_fraction, cfg.smooth_epochs)
    state = {"epoch": 0, "best_score": -1.0, "best_epoch": 0, "history": [], "elapsed": 0.0}
    if resume and (out / "last.pt").is_file():
        ckpt = load_checkpoint(out / "last.pt")
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = ckpt["state"]
        if "selection" in ckpt or "average" in ckpt:  # "average"/"smoothed": checkpoints of 0.1 runs
            selection.load_state_dict(ckpt.get("selection") or ckpt)
        state.setdefault("best_score", state.pop("best_f1", -1.0))  # checkpoints of older versions
        if rank == 0:  # the checkpoint's history is authoritative: drop epochs after it
            atomic_write_text(out / "history.jsonl", "".join(json.dumps(h) + "\n" for h in state["history"]))
        if show:
            print(f"resuming {out} after epoch {state['epoch']}")
    net = wrap_model(model, world)

    neutral = manifest.label_index(manifest.neutral) if manifest.neutral else None
    augment = training_augmentation(cfg, neutral, str(out / "config.yaml"))
    # reduction none: averaged over the global batch
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none", label_smoothing=cfg.label_smoothing)
    status = {"status": "running", "world_size": world, "provenance": provenance}
    if rank == 0:
        atomic_write_text(out / "run.json", json.dumps(status, indent=1))

    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        t0 = time.time()
        items = clean_items + _sample_noisy(noisy_items, cfg, epoch)
        batches = TrainBatches(items, lambda it: stores[it.condition][it.utt_id], cfg.batch_size,
                               cfg.chunk_frames, augment, seed=cfg.seed, rank=rank, world_size=world,
                               mean_norm=mean_norm)
        torch.manual_seed(cfg.seed * 100003 + epoch)  # dropout: same stream after a resume
        net.train()
        if cfg.freeze_encoder:
            freeze_encoder_norms(model)
        losses, augmented = [], 0
        bar = tqdm(batches.epoch(epoch), total=batches.num_batches(), disable=not show,
                   desc=f"epoch {epoch}/{cfg.epochs}", leave=False)
        for x, lengths, y in bar:
            if augment is not None and augment.last_plan is not None and augment.last_plan.augmented:
                augmented += 1
            loss = global_mean_loss(loss_fn(net(x.to(device), lengths.to(device)), y.to(device)),
                                    batches.global_size, world)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())  # about the mean loss of this rank's shard
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if rank == 0:
            probs = predict_proba(model, dev_x, device, mean_norm=mean_norm)
            dev = score(dev_y, probs.argmax(1).tolist(), task.labels)
            state["elapsed"] += time.time() - t0
            record = {"epoch": epoch, "train_loss": float(np.mean(losses)),
                      **{f"dev_{k}": dev[k] for k in task.report},
                      "copypaste_batches": augmented / batches.num_batches(),
                      "train_items": len(items), "seconds": round(time.time() - t0, 2)}
            state["history"].append(record)
            choice = selection.after_epoch(epoch, dev[task.metric], model, state["best_score"],
                                           lambda w: dev_score(_with_weights(model, w), dev_x, dev_y, task, device, mean_norm))
            improved = choice is not None
            if improved:
                state["best_score"], state["best_epoch"], weights = choice
                kept = model if weights is None else _with_weights(model, weights)
                if weights is not None and cfg.select == "average":
                    record[f"dev_{task.metric}_average"] = state["best_score"]
                save_atomic(model_file(kept, manifest, cfg, provenance, kind=task.kind, labels=task.labels),
                            out / "model.pt")
            state["epoch"] = epoch
            save_atomic({"format": FORMAT, "kind": "resume", "state_dict": model.state_dict(),
                         "optimizer": optimizer.state_dict(), "state": state, "selection": selection.state_dict()},
                        out / "last.pt")
            with open(out / "history.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if show:
                tqdm.write(f"epoch {epoch:3d}  loss {record['train_loss']:.3f}  dev {task.metric} {100 * dev[task.metric]:.1f} %"
                           f"{'  *' if improved else ''}  ({record['seconds']:.1f} s)")
    if world > 1:
        dist.barrier()
    result: dict = {}
    if rank == 0:
        result = finish_run(out, cfg, manifest, task, state, device, status, show)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def _with_weights(model: torch.nn.Module, weights: dict) -> torch.nn.Module:
    kept = copy.deepcopy(model)
    kept.load_state_dict(weights)
    return kept


def dev_score(model: torch.nn.Module, dev_x: list, dev_y: list[int], task: Task, device: torch.device,
              mean_norm: bool) -> float:
    probs = predict_proba(model, dev_x, device, mean_norm=mean_norm)
    return score(dev_y, probs.argmax(1).tolist(), task.labels)[task.metric]


def _sample_noisy(noisy: list[Item], cfg: TrainConfig, epoch: int) -> list[Item]:
    if not noisy or cfg.noise_epoch_fraction >= 1.0:
        return noisy
    rng = np.random.default_rng([cfg.seed, epoch, 7])
    k = int(round(len(noisy) * cfg.noise_epoch_fraction))
    return [noisy[i] for i in rng.choice(len(noisy), size=k, replace=False)]


def finish_run(out: Path, cfg: TrainConfig, manifest: Manifest, task: Task, state: dict,
               device: torch.device, status: dict, show: bool) -> dict:
    from .evaluate import evaluate_ids
    from .inference import model_from_file

    best = model_from_file(load_checkpoint(out / "model.pt"), str(out / "model.pt")).to(device)
    if task.kind == "speaker":
        from .speaker import evaluate_speaker
        metrics = evaluate_speaker(best, manifest, task, cfg, device=device)
    else:
        metrics = evaluate_ids(best, manifest, task.test, cfg, device=device, progress=show)
    metrics.update({"best_epoch": state["best_epoch"], f"dev_{task.metric}": state["best_score"],
                    "train_seconds": round(state["elapsed"], 1)})
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
        print(f"{what} {100 * value:.2f} % (best dev epoch {state['best_epoch']}) -> {out}")
    return metrics


def summarize(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def train_seeds(cfg: TrainConfig, out_dir: str | Path, seeds: list[int], force: bool = False,
                progress: bool = True) -> dict:
    """One run per seed (OUT itself for one seed, OUT/seed-N for several); mean +- std of test wF1.

    With several seeds a finished seed is reused, so an interrupted series resumes.
    """
    import dataclasses

    out = Path(out_dir)
    if len(seeds) == 1:
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
        if run_status(run) == "complete" and yaml.safe_load((run / "config.yaml").read_text()) == scfg.to_dict():
            m = json.loads((run / "metrics.json").read_text())
        else:
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
