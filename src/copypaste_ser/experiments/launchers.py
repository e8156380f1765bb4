"""Where the grid's runs execute: one job per run, behind one small interface.

* ``local`` (default): ``workers <= 1`` runs the jobs in this process, one after the other;
  more workers run each job in its own spawned process, at most ``workers`` at a time.
* ``slurm``: one submitit array per grid invocation, one array task per run
  (``pip install copypaste-ser[cluster]``). ``submitit-local`` is the same code path on
  submitit's local executor (jobs as local subprocesses), which is how the tests exercise it.

Every launcher has the same contract: ``run(fn, items, done)`` calls ``fn(item)`` once per
item, calls ``done(item, result)`` as each job finishes, and on the first job error (or
Ctrl-C) stops the other jobs at once and raises it. Stopped runs resume from their last
checkpoint when the grid runs again, so launchers need no state of their own.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

from copypaste_ser.errors import UserError

LAUNCHERS = ("local", "slurm")
_HIDDEN = ("submitit-local",)  # tests: the slurm launcher on submitit's local executor

Done = Callable[[Any, Any], None]


class Launcher(Protocol):
    def run(self, fn: Callable[[Any], Any], items: Sequence[Any], done: Done) -> None: ...


def make_launcher(name: str, workers: int = 1, folder: Path | None = None,
                  options: dict[str, Any] | None = None) -> Launcher:
    """``folder`` holds the scheduler's logs and pickles; ``options`` go to submitit's
    ``update_parameters`` (e.g. ``slurm_partition``, ``gpus_per_node``, ``timeout_min``)."""
    if name == "local":
        if options:
            raise UserError("grid: --slurm options need --launcher slurm")
        return LocalLauncher(workers)
    if name in ("slurm", "submitit-local"):
        if folder is None:
            raise ValueError("the slurm launcher needs a folder for its logs")
        return SubmititLauncher(folder, cluster="slurm" if name == "slurm" else "local",
                                options=options or {}, parallelism=workers)
    raise UserError(f"grid: --launcher must be one of {', '.join(LAUNCHERS)}, not {name!r}")


class LocalLauncher:
    """Jobs in this process (one worker) or in one spawned process each, ``workers`` at a time.
    One process per job (not a pool) so stopping them needs no private pool handles, and a job
    whose process dies (OOM killer, segfault) is reported instead of hanging the grid."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any], done: Done) -> None:
        if self.workers == 1:  # in-process: plain tracebacks, and tests can patch the job
            for item in items:
                done(item, fn(item))
            return
        ctx = mp.get_context("spawn")  # fork would copy torch's thread pools and locks
        queue = list(items)
        running: dict[Any, tuple[Any, Any, Any]] = {}  # sentinel -> (item, process, connection)
        try:
            while queue or running:
                while queue and len(running) < self.workers:
                    item = queue.pop(0)
                    receive, send = ctx.Pipe(duplex=False)
                    proc = ctx.Process(target=_child, args=(os.getpid(), fn, item, send), daemon=True)
                    proc.start()
                    send.close()  # the child holds the only writer: EOF once it is gone
                    running[proc.sentinel] = (item, proc, receive)
                for sentinel in wait(list(running)):
                    item, proc, receive = running.pop(sentinel)
                    outcome = _receive(receive, proc)
                    proc.join()
                    done(item, _unwrap(outcome))
        except BaseException:
            # a failure or Ctrl-C stops the grid now, not after the queued runs
            for _, proc, _ in running.values():
                proc.terminate()
            for _, proc, receive in running.values():
                proc.join()
                receive.close()
            raise


def _receive(receive: Any, proc: Any) -> tuple[str, Any]:
    try:
        return receive.recv() if receive.poll() else ("error", _died(proc))
    except EOFError:
        return ("error", _died(proc))
    finally:
        receive.close()


def _died(proc: Any) -> RuntimeError:
    proc.join()
    return RuntimeError(f"grid worker {proc.pid} died (exit code {proc.exitcode}) before finishing its run")


def _child(parent: int, fn: Callable[[Any], Any], item: Any, send: Any) -> None:
    """A worker process: dies with the grid, leaves Ctrl-C to it (it stops us, so the
    interruption is logged once), and reports its job's outcome through ``send``."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from tqdm.auto import tqdm
    tqdm.set_lock(threading.RLock())  # tqdm's default process lock would leak when terminated
    send.send(captured(fn, item))
    send.close()


@contextlib.contextmanager
def _cancellable_children(local: bool) -> Iterator[None]:
    """submitit's local executor cancels a job with SIGINT. A process started from a background
    shell inherits SIGINT ignored, and so would the jobs, which then train on to the end after
    a Ctrl-C or kill of the grid. While the jobs start, SIGINT is set to Python's default so
    they inherit a working one."""
    old = signal.getsignal(signal.SIGINT)
    switch = local and old == signal.SIG_IGN and threading.current_thread() is threading.main_thread()
    if switch:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if switch:
            signal.signal(signal.SIGINT, old)


def die_with_parent(parent: int) -> None:
    """Have Linux SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG): an orphaned
    worker would go on training, and race the next grid for the same run folders."""
    if sys.platform.startswith("linux"):
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


def captured(fn: Callable[[Any], Any], item: Any) -> tuple[str, Any]:
    """Run a job, returning its exception as a value: submitit re-raises a job's error only as a
    traceback string, and the grid needs the UserError itself for its one-line message."""
    try:
        return ("ok", fn(item))
    except Exception as e:  # noqa: BLE001 - handed back to the grid process, which raises it
        try:
            import pickle
            pickle.dumps(e)
        except Exception:  # noqa: BLE001
            e = RuntimeError(f"{type(e).__name__}: {e}")
        return ("error", e)


def _unwrap(outcome: tuple[str, Any]) -> Any:
    kind, value = outcome
    if kind == "error":
        raise value
    return value


class SubmititLauncher:
    """One submitit job array per invocation, one task per run; ``parallelism`` caps how many
    tasks run at once (``slurm_array_parallelism``)."""

    poll_seconds = 2.0

    def __init__(self, folder: Path, cluster: str = "slurm", options: dict[str, Any] | None = None,
                 parallelism: int = 1) -> None:
        try:
            import submitit
        except ImportError:
            raise UserError("grid --launcher slurm needs submitit: pip install 'copypaste-ser[cluster]'") from None
        self.cluster = cluster
        try:
            self.executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        except Exception as e:  # noqa: BLE001 - e.g. no sbatch on this machine
            raise UserError(f"grid: cannot use the {cluster} scheduler ({e})") from None
        params: dict[str, Any] = {"slurm_array_parallelism": max(1, parallelism), "name": "copypaste-ser-grid"}
        params.update(options or {})
        try:
            self.executor.update_parameters(**params)
        except Exception as e:  # noqa: BLE001 - submitit names the unknown parameter
            raise UserError(f"grid: bad --slurm option ({e})") from None

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any], done: Done) -> None:
        if not items:
            return
        with _cancellable_children(self.cluster == "local"):
            jobs = self.executor.map_array(functools.partial(captured, fn), list(items))
        pending = dict(zip(jobs, items))
        try:
            while pending:
                for job in [j for j in pending if j.done()]:
                    item = pending.pop(job)
                    done(item, _unwrap(job.result()))
                if pending:
                    self._pause()
        except BaseException:
            for job in pending:  # scancel the rest; their runs resume from checkpoints next time
                job.cancel(check=False)
            if self.cluster == "local":  # let local jobs end, so a rerun does not race them
                deadline = time.monotonic() + 60
                while any(not j.done() for j in pending) and time.monotonic() < deadline:
                    time.sleep(0.1)
            raise

    def _pause(self) -> None:
        time.sleep(self.poll_seconds)


def parse_options(launcher: str, pairs: Sequence[str]) -> dict[str, Any]:
    """``--slurm KEY=VALUE`` pairs, values read as YAML scalars (``gpus_per_node=1`` is an int)."""
    import yaml

    if launcher not in LAUNCHERS + _HIDDEN:
        raise UserError(f"grid: --launcher must be one of {', '.join(LAUNCHERS)}, not {launcher!r}")
    if pairs and launcher == "local":  # before the grid starts, not when its first job is launched
        raise UserError("grid: --slurm options need --launcher slurm")
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"grid: --slurm takes KEY=VALUE, not {pair!r}")
        options[key.strip()] = yaml.safe_load(value)
    return options
