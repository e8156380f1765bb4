"""Progress bars show on a terminal and stay out of log files (stderr redirected to a file)."""

import subprocess
import sys


def test_progress_bars_stay_out_of_a_log_file(synthetic_corpus, tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        done = subprocess.run([sys.executable, "-m", "copypaste_ser", "train", "--data", str(synthetic_corpus),
                               "--preset", "tiny", "--epochs", "1", "--out", str(tmp_path / "run")],
                              stdout=f, stderr=subprocess.STDOUT, timeout=600)
    text = log.read_text()
    assert done.returncode == 0, text
    assert "it/s" not in text and "\r" not in text
    assert "test weighted F1" in text
