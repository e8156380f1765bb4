"""Bit-identical training on CPU: the same seed gives the same weights run after run.

Sources of run-to-run divergence on CPU, and what is done about each:

* Intel MKL (torch's BLAS here) picks code paths by the memory alignment of its inputs, so a
  matrix product can round differently from one process to the next. ``MKL_CBWR=AUTO,STRICT``
  (conditional numerical reproducibility, set by the CLI before torch loads MKL; a library user
  sets it in their own environment) fixes the path for a given CPU and thread count.
* oneDNN (MKL-DNN) convolutions and the few ATen kernels with atomic accumulation:
  ``torch.backends.mkldnn.deterministic`` and ``torch.use_deterministic_algorithms``.
* Thread pools: a reduction split over N threads rounds differently from one over M, so
  results are identical only for the same ``threads`` (``train --threads``; 0 = torch's
  default, the machine's cores). Data order and CopyPaste draw from generators seeded by
  (seed, epoch, rank) (data.TrainBatches), never from the clock or ``hash()``.

Runs on GPU are not made deterministic (that would need CUBLAS_WORKSPACE_CONFIG and slower
kernels); DDP runs differ from one-process runs (distributed.py).
"""

from __future__ import annotations

import torch


def make_deterministic(device: torch.device) -> None:
    """Deterministic kernels for a CPU run (a warning, not an error, where torch has none)."""
    if device.type != "cpu":
        return
    torch.use_deterministic_algorithms(True, warn_only=True)
    if hasattr(torch.backends.mkldnn, "deterministic"):
        torch.backends.mkldnn.deterministic = True
