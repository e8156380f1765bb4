"""DistributedDataParallel on CPU: two gloo processes under torchrun train one model."""

import json
import os
import subprocess
import sys


def test_torchrun_two_processes(synthetic_corpus, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "copypaste_ser", "train", "--data", str(synthetic_corpus), "--out", str(out),
           "--preset", "tiny", "--epochs", "2", "--threads", "1", "--copypaste", "n-cp", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads((out / "run.json").read_text())
    assert status["status"] == "complete" and status["world_size"] == 2
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert (out / "metrics.json").is_file()


RANK_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
from copypaste_ser.augment.copypaste import CopyPaste
from copypaste_ser.training.distributed import dist_setup
from test_data import batches
rank, world, _ = dist_setup()
cp = CopyPaste("n+se-cp", neutral_label=0, p=0.8, piece_length=10, seed=0)
out = [(x, l, y, g, p) for x, l, y, g, p in batches(world, rank, cp, chunk=25, mean_norm=True, epoch=2)]
torch.save(out, {out!r} + f"/rank{{rank}}.pt")
torch.distributed.destroy_process_group()
"""


def test_two_gloo_ranks_see_the_one_process_batches_and_plan(tmp_path):
    """Under torchrun (gloo), the two ranks' shards of every batch, put together, are the
    batch one process builds for the same seed, and both applied its CopyPaste plan."""
    from pathlib import Path

    import torch
    from test_data import batches

    from copypaste_ser.augment.copypaste import CopyPaste

    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT.format(tests=str(Path(__file__).parent), out=str(tmp_path)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    cp = CopyPaste("n+se-cp", neutral_label=0, p=0.8, piece_length=10, seed=0)
    whole = batches(1, 0, cp, chunk=25, mean_norm=True, epoch=2)
    assert len(r0) == len(r1) == len(whole)
    schemes = set()
    for (xw, lw, yw, gw, pw), (x0, l0, y0, _, p0), (x1, l1, y1, _, p1) in zip(whole, r0, r1):
        assert p0 == p1 == pw
        schemes.add(pw.scheme)
        together = torch.empty_like(xw)
        together[0::2], together[1::2] = x0, x1
        assert torch.equal(together, xw)
        assert torch.equal(torch.cat([y0, y1]).sort().values, yw.sort().values)
        assert torch.equal(yw[0::2], y0) and torch.equal(lw[1::2], l1)
    assert len(schemes) > 1  # the test covers augmented and plain batches
