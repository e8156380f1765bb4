"""The whole pipeline on built-in synthetic data: generate, prepare, train, evaluate, tabulate."""

from __future__ import annotations

import json
import time
from pathlib import Path

from copypaste_ser.training.config import make_config
from copypaste_ser.training.loop import summarize, train_seeds
from copypaste_ser.training.rundir import claim

SCHEMES = ("none", "n-cp", "se-cp", "n+se-cp")


def run_demo(out: str | Path = "demo-out", force: bool = False, epochs: int = 12,
             seeds: tuple[int, ...] = (0, 1), schemes: tuple[str, ...] = SCHEMES) -> dict:
    """Returns {scheme: {"mean", "std", "probe"}}; runs go to ``out/runs/<scheme>/seed-<n>`` (one
    seed too) and finished ones are reused, so an interrupted demo resumes."""
    from copypaste_ser.data.corpora.synthetic import generate
    from copypaste_ser.data.prepare import prepare_to_dir

    out = Path(out)
    make_config("tiny", data=str(out), epochs=epochs)  # --epochs checked before the folder is claimed
    claim(out, "demo", force)  # --force clears only what the demo wrote (rundir.py)
    t0 = time.time()
    audio = out / "synthetic-audio"
    if not (audio / ".complete").is_file():
        print(f"generating the synthetic corpus in {audio}")
        generate(audio, seed=0)
        (audio / ".complete").touch()
    data = out / "data"
    manifest, _ = prepare_to_dir("synthetic", audio, data, force=True)
    print(manifest.summary())
    results = {}
    for scheme in schemes:
        print(f"\n== training {len(seeds)} seeds with copypaste={scheme}")
        cfg = make_config("tiny", data=str(data.resolve()), copypaste=scheme, epochs=epochs)
        summary = train_seeds(cfg, out / "runs" / scheme, seeds=list(seeds), progress=True, seed_folders=True)
        probes = [concat_probe_score(Path(r)) for r in summary["runs"]]
        results[scheme] = {"mean": summary["mean"], "std": summary["std"], "probe": summarize(probes)}
    print(format_table(results, len(seeds)))
    print(f"\ndemo finished in {time.time() - t0:.0f} s; runs, metrics and plots are in {out / 'runs'}")
    return results


def concat_probe_score(run: Path) -> float:
    """The run's concat probe: read back when a stored score is newer than its model file (an
    earlier demo measured this model), else measured now (and stored by ``evaluate_run``)."""
    from copypaste_ser.evaluation.evaluate import evaluate_run
    from copypaste_ser.models.checkpoint import resolve_model_path
    from copypaste_ser.training.rundir import evaluation_dir

    stored = evaluation_dir(run, "clean") / "metrics.json"
    if stored.is_file() and stored.stat().st_mtime_ns >= resolve_model_path(run).stat().st_mtime_ns:
        kept = json.loads(stored.read_text()).get("probe", {}).get("emotion_kept_concat")
        if kept is not None:
            return kept
    return evaluate_run(run, probe="concat", progress=False)["probe"]["emotion_kept_concat"]


def format_table(results: dict, n_seeds: int) -> str:
    lines = ["", f"Synthetic corpus, tiny preset, {n_seeds} seeds: test weighted F1 (%) and concat probe",
             "", "| CopyPaste | weighted F1 | change vs none | emotion kept in emotional+neutral concat |",
             "|---|---|---|---|"]
    base = results.get("none", {}).get("mean")
    for scheme, r in results.items():
        delta = "" if base is None or scheme == "none" else f"{100 * (r['mean'] - base):+.2f}"
        lines.append(f"| {scheme} | {100 * r['mean']:.2f} +- {100 * r['std']:.2f} | {delta} | "
                     f"{100 * r['probe'][0]:.1f} +- {100 * r['probe'][1]:.1f} |")
    return "\n".join(lines)
