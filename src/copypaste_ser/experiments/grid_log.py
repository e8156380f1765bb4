"""``grid-log.jsonl``: one line per grid invocation (wall time, outcome, slice), also for one
that was killed.

While an invocation runs, its line waits in ``.grid-running/<id>.json`` (refreshed every few
seconds) beside a lock file it holds. An invocation killed without a chance to write its line
(``kill -9``, power loss) leaves both behind with the lock released; the next invocation on the
same ``out`` finds them and logs that line with status "killed". Lines in grid-log.jsonl are
only ever complete invocations, as report.py counts them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import torch

from copypaste_ser.files.atomic import atomic_write_text

LOG = "grid-log.jsonl"
RUNNING = ".grid-running"
HEARTBEAT_SECONDS = 10.0
#: Packages whose version can change a result at float level (kernels, solvers).
NUMERIC_PACKAGES = ("numpy", "torch", "scikit-learn", "scipy")
#: Vector-instruction flags of /proc/cpuinfo, widest first: BLAS and oneDNN pick kernels by them.
SIMD_FLAGS = ("amx_tile", "avx512_bf16", "avx512f", "avx2", "avx", "sse4_2")


def machine() -> dict:
    """The CPU (and GPU, where training used one) and numeric packages an invocation ran on:
    two fresh checkouts that score a baseline differently at float level can then be told
    apart by their machine."""
    cpu, flags, ident = platform.processor() or platform.machine(), set(), {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name":
                cpu = value
            elif key in ("cpu family", "model"):  # VMs often name every Xeon alike
                ident[key] = value
            elif key == "flags":
                flags = set(value.split())
                break
    if ident:
        cpu += f" (family {ident.get('cpu family', '?')} model {ident.get('model', '?')})"
    simd = next((f for f in SIMD_FLAGS if f in flags), "")
    versions = {}
    for name in NUMERIC_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    gpu = {"gpu": torch.cuda.get_device_name(0)} if torch.cuda.is_available() else {}
    return {"cpu": cpu, "simd": simd, "cores": os.cpu_count(), **gpu, **versions}


def machine_label(entry: dict) -> str:
    """One line for a report: "Intel Xeon, avx512f, 2 cores; numpy 2.3.1, torch 2.13.0+cpu"."""
    m = entry.get("machine")
    if not m:
        return "not recorded"
    packages = ", ".join(f"{n} {m[n]}" for n in NUMERIC_PACKAGES if n in m)
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    return f"{m['cpu']}, {m['simd'] or 'no AVX'}, {m['cores']} cores{gpu}; {packages}"


class Invocation:
    """The log entry of one running grid invocation; call :meth:`finish` when it ends."""

    def __init__(self, out: Path, entry: dict, completed: Callable[[], int]):
        self.out, self.entry, self._completed = out, entry, completed
        self.started = time.time()
        entry["started"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started))
        name = f"{os.getpid()}-{int(self.started * 1000)}"
        self._record = out / RUNNING / f"{name}.json"
        self._lock = out / RUNNING / f"{name}.lock"
        self._record.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self._lock, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # a new file: nobody else holds it
        self._stop = threading.Event()
        self._save("killed")  # what the next invocation logs if this one never finishes
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()

    @classmethod
    def start(cls, out: str | Path, workers: int, slice_: dict, completed: Callable[[], int]) -> Invocation:
        """Log invocations killed earlier, then record this one; ``completed()`` counts the runs
        it has finished so far (trained and scored)."""
        out = Path(out)
        log_killed(out)
        return cls(out, {"workers": workers, "slice": slice_, "machine": machine()}, completed)

    def _entry(self, status: str, completed: int) -> dict:
        e = {"started": self.entry["started"], "seconds": round(time.time() - self.started, 1), "status": status,
             "runs_completed": completed}
        return {**e, **{k: v for k, v in self.entry.items() if k not in e}}

    def _save(self, status: str, completed: int = 0) -> None:
        atomic_write_text(self._record, json.dumps(self._entry(status, completed)))

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(Exception):  # a bookkeeping hiccup must not stop the grid
                self._save("killed", self._completed())

    def finish(self, status: str) -> None:
        """Append this invocation's line to grid-log.jsonl and drop its running record."""
        self._stop.set()
        self._beat.join()
        _append(self.out, self._entry(status, self._completed()))
        self._record.unlink(missing_ok=True)
        self._lock.unlink(missing_ok=True)
        os.close(self._fd)


def log_killed(out: Path) -> list[dict]:
    """Log each recorded invocation whose process is gone (its lock is free) as killed."""
    logged = []
    folder = Path(out) / RUNNING
    for record in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        lock = record.with_suffix(".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # still running
            os.close(fd)
            continue
        try:
            entry = json.loads(record.read_text())
            _append(out, entry)
            logged.append(entry)
        except (OSError, ValueError):  # taken by another new invocation, or cut short
            pass
        record.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)
        os.close(fd)
    return logged


def _append(out: Path, entry: dict) -> None:
    with open(Path(out) / LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


def read_logs(results: list[Path]) -> list[dict]:
    """The grid invocations (``grid-log.jsonl`` beside each results.csv), each once, in time order."""
    entries: dict[str, dict] = {}
    for path in results:
        f = Path(path).parent / LOG
        if f.is_file():
            for line in f.read_text().splitlines():
                if line.strip():
                    entries[line] = json.loads(line)
    return sorted(entries.values(), key=lambda e: e["started"])
