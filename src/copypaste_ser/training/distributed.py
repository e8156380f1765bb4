"""DistributedDataParallel under ``torchrun``: process group, model wrapping, global-batch loss.

A DDP run trains the same method as one process:

* Data: every rank builds the whole global batch with shared random streams, CopyPaste
  included, and keeps its shard (data.TrainBatches).
* Loss: each rank sums its shard's losses and divides by the GLOBAL batch size; DDP
  averages gradients over ranks, so the rank's sum is scaled by ``world_size`` to undo
  that average. The gradient is then the one-process gradient of the batch mean, also
  when shards differ in size.
* BatchNorm: with nccl (CUDA) every BatchNorm becomes ``SyncBatchNorm``, whose batch
  statistics are taken over the global batch as in one process. torch's SyncBatchNorm
  runs only on GPU (it raises for CPU tensors), so under gloo on CPU the BatchNorm
  layers stay per rank: batch statistics come from the rank's shard (half the batch with
  two ranks), and the running statistics are rank 0's (DDP broadcasts buffers from rank
  0 at every forward). That is the one way a CPU DDP run differs from one process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def dist_setup() -> tuple[int, int, torch.device]:
    """(rank, world size, device); starts the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def syncs_batchnorm() -> bool:
    """Whether BatchNorm statistics are synchronised over ranks (nccl only, see above)."""
    return dist.is_initialized() and dist.get_backend() == "nccl"


def wrap_model(model: torch.nn.Module, world: int) -> torch.nn.Module:
    """The module to train: ``model`` itself for one process, else DDP (with SyncBatchNorm
    on nccl). Converting keeps the parameter objects, so the optimiser built on ``model``
    stays valid; ``model`` is left as is for scoring and saving."""
    if world <= 1:
        return model
    net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model) if syncs_batchnorm() else model
    return torch.nn.parallel.DistributedDataParallel(net)


def global_mean_loss(losses: torch.Tensor, global_size: int, world: int) -> torch.Tensor:
    """This rank's share of the mean loss over the global batch (see the module docstring)."""
    return losses.sum() * (world / max(global_size, 1))
