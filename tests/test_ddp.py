"""DistributedDataParallel on CPU: two gloo processes under torchrun train one model."""

import json
import os
import subprocess
import sys


def test_torchrun_two_processes(synthetic_corpus, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "copypaste_ser.cli", "train", "--data", str(synthetic_corpus), "--out", str(out),
           "--preset", "tiny", "--epochs", "2", "--threads", "1", "--copypaste", "n-cp", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads((out / "run.json").read_text())
    assert status["status"] == "complete" and status["world_size"] == 2
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert (out / "metrics.json").is_file()
