"""The experiment commands: grid, report, baseline, score, choose, ensemble, fuse, against-baselines
(thin wrappers over the modules of copypaste_ser.experiments)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from copypaste_ser.cli.app import app
from copypaste_ser.errors import UserError
from copypaste_ser.experiments.paper import TABLES


@app.command()
def grid(
    config: Path = typer.Argument(..., help="Grid YAML (see configs/)"),
    workers: Optional[int] = typer.Option(None, help="Parallel training processes"),
    copypaste: Optional[list[str]] = typer.Option(None, help="Run only these schemes (repeatable)"),
    training_data: Optional[list[str]] = typer.Option(None, help="Run only clean and/or clean+noise"),
    init: Optional[list[str]] = typer.Option(None, help="Run only these initialisations"),
    seeds: Optional[list[int]] = typer.Option(None, "--seed", help="Run only these seeds"),
    folds: Optional[list[str]] = typer.Option(None, "--fold", help="Run only these folds (names or patterns)"),
    done: Optional[list[Path]] = typer.Option(None, "--done", help="results.csv (or its folder) of this grid's "
                                              "runs finished on another machine: they are not run again, "
                                              "and --report merges them (repeatable)"),
    no_run: bool = typer.Option(False, "--no-run", help="Only collect finished runs and report"),
    status: bool = typer.Option(False, "--status", help="Only show each run's state, epochs done and the "
                                "training time left (reads the run folders; writes nothing)"),
    report: Optional[Path] = typer.Option(None, help="Also write the Markdown report into this folder"),
    rule: Optional[Path] = typer.Option(None, help="The report's reporting rule (docs/protocol/reporting-rule."
                                        "yaml): stated, with the cells that fall short of it (with --report)"),
    title: str = typer.Option("", help="Report title"),
    notes: str = typer.Option("", help="A paragraph for the report (how the runs were made, ...)"),
    force: bool = typer.Option(False, help="Train again the runs made with another config than the grid's"),
    launcher: str = typer.Option("local", help="local (processes on this machine) or slurm (one submitit "
                                 "array per invocation, one task per run; needs the cluster extra: submitit)"),
    slurm: Optional[list[str]] = typer.Option(None, help="KEY=VALUE for submitit's update_parameters, e.g. "
                                              "slurm_partition=gpu, gpus_per_node=1, timeout_min=600 (repeatable)"),
) -> None:
    """Run (or complete) the paper's experiment grid, then tabulate it."""
    from copypaste_ser.experiments.grid import collect, run_grid
    from copypaste_ser.experiments.grid_config import GridConfig
    from copypaste_ser.experiments.grid_done import read_done
    from copypaste_ser.experiments.grid_rules import check_slices

    check_slices(workers, seeds)
    g = GridConfig.load(config)
    g = g.restricted(workers=workers, copypaste=copypaste, training_data=training_data, init=init, seeds=seeds,
                     folds=folds)
    held = read_done(g, done or [])
    baselines = held.baselines_to_score  # the others are in the --done files
    if held.files and g.baseline and not status:
        typer.echo("baseline: every fold's scores are in the --done files; not scored again" if not baselines else
                   f"baseline: scoring {', '.join(baselines)} (the others' scores are in the --done files)")
    if status:
        from copypaste_ser.experiments.grid_status import format_status, grid_status
        typer.echo(format_status(grid_status(g, held.runs), g.workers))
        return
    if report is not None or rule is not None:  # checked before the grid runs or rewrites its results
        _check_grid_report(report, rule)
    if no_run:
        collect(g.whole)
        results = Path(g.out) / "results.csv"
    else:
        from copypaste_ser.experiments.launchers import parse_options
        results = run_grid(g, force=force, launcher=launcher, launcher_options=parse_options(launcher, slurm or []),
                           done_elsewhere=held.runs, baselines=baselines)
    typer.echo(f"results: {results}")
    if report is not None:
        # the --done rows first (their order kept, the grid's own rows after them); a grid with no
        # run of its own yet has no results.csv
        _write_grid_report([r for r in (*held.files, results) if r.is_file()], report, title or config.stem,
                           notes, rule)


def _write_grid_report(sources: list[Path], report: Path, title: str, notes: str, rule: Path | None) -> None:
    import shlex

    from copypaste_ser.experiments.report import write_report
    command = "copypaste-ser " + shlex.join(sys.argv[1:])
    made = write_report(sources, report, title, command, notes, update=True, rule=rule)
    typer.echo(f"report: {made}")


def _check_grid_report(report: Path | None, rule: Path | None) -> None:
    """``grid --report`` may replace only the report files the tool wrote; ``--rule`` needs a
    report and must read as a reporting rule."""
    from copypaste_ser.experiments.report import REPORT_FILES
    from copypaste_ser.experiments.reporting_rule import load_rule
    from copypaste_ser.files.outputs import check_outputs

    if report is None:
        raise UserError("--rule: it governs the report; add --report DIR (or drop --rule)")
    check_outputs([report / name for name in REPORT_FILES], True, "--report")
    if rule is not None:
        load_rule(rule)


@app.command("report")
def report_cmd(
    results: list[Path] = typer.Argument(..., help="results.csv of a grid, or a folder holding one (a grid's "
                                         "out, or `train --fold all`'s OUT); several are merged (the last wins "
                                         "where they hold the same run); LABEL=FILE names that file's models "
                                         "LABEL (two grids of one init, e.g. a frozen and a tuned encoder); "
                                         "FILE@INIT,... takes only those inits' rows"),
    out: Path = typer.Option(..., help="Folder for report.md, plots and the merged results.csv"),
    title: str = typer.Option("Results"),
    command: str = typer.Option("", help="The command that made the results, quoted in the report"),
    notes: str = typer.Option("", help="A paragraph for the report (how the runs were made, ...)"),
    force: bool = typer.Option(False, help="Replace an earlier report in OUT, even one with rows the new one lacks"),
    update: bool = typer.Option(False, help="Refresh the report the tool wrote in OUT with more runs (give its "
                                "results.csv among RESULTS); refused where the new one would lack any of its rows"),
    rule: Optional[Path] = typer.Option(None, help="A reporting rule (docs/protocol/reporting-rule.yaml): "
                                        "state it and list the cells that fall short of it"),
    paper: Optional[str] = typer.Option(None, help="Print the paper's numbers beside ours: crema-d, iemocap "
                                        "or msp-podcast"),
) -> None:
    """Write the Markdown report (paper-style tables, significance, plots) from results.csv files."""
    from copypaste_ser.experiments.report import write_report

    if paper is not None and paper not in TABLES:
        raise UserError(f"--paper {paper!r}: choose one of {', '.join(TABLES)}")
    if force and update:
        raise UserError("--force and --update: choose one (--update keeps every row of the earlier report, "
                        "--force may drop them)")
    made = write_report(results, out, title, command, notes, force=force, update=update, rule=rule, paper=paper)
    typer.echo(str(made))


@app.command()
def baseline(
    data: Path = typer.Argument(..., help="A prepared corpus folder"),
    out: Path = typer.Option(..., help="Folder for results.csv and predictions.json"),
    fold: str = typer.Option("all", help="all, a fold name or a pattern such as 'loso-*'"),
    snr: Optional[list[float]] = typer.Option(None, help="Also test at this SNR (dB; repeatable)"),
    noise_root: Optional[Path] = typer.Option(None, help="Noise for --snr (a folder with noise/ and music/)"),
    method: Optional[list[str]] = typer.Option(None, help="Only this baseline (repeatable): egemaps-svm, mfcc-lr, "
                                               "rzstates-lr or whisper-lr; default all installed"),
    force: bool = typer.Option(False, help="Replace results an earlier `baseline` wrote in OUT"),
) -> None:
    """eGeMAPS + SVM and linear probes in the corpus's folds; `report RUNS OUT` pools them beside your runs."""
    from copypaste_ser.experiments.baseline_folds import run_baselines

    typer.echo(f"-> {run_baselines(data, out, fold, snr, noise_root, force=force, methods=method)}")


@app.command("score")
def score_command(
    data: Path = typer.Argument(..., help="A prepared corpus folder"),
    out: Path = typer.Option(..., help="Folder for results.csv and predictions.json"),
    model: Optional[str] = typer.Option(None, help="A run folder, model.pt, model folder or .onnx (default: "
                                        "the shipped default model)"),
    fold: str = typer.Option("all", help="all, a fold name or a pattern such as 'loco-*'"),
    name: Optional[str] = typer.Option(None, help="The model's name in results.csv (its init column)"),
    force: bool = typer.Option(False, help="Replace results an earlier `score` wrote in OUT"),
) -> None:
    """Score a finished model on the test speakers of a corpus's folds (no training); `report` pools it."""
    from copypaste_ser.experiments.score_model import score_model

    typer.echo(f"-> {score_model(model, data, out, fold, name, force=force)}")


@app.command()
def choose(
    configs: list[Path] = typer.Argument(..., help="Dev grid configs (their runs finished): the candidates"),
    out: Path = typer.Option(..., help="Folder for choice.json, the test grid configs and (--run) the report"),
    run: bool = typer.Option(False, help="Then run the chosen test grids and write OUT/report"),
    force: bool = typer.Option(False, help="Replace an earlier choice in OUT"),
    earlier: Optional[Path] = typer.Option(None, help="The OUT folder of an earlier choice for CONFIGS to join: "
                                           "its candidates keep their recorded dev scores and test rows, so "
                                           "their run folders are not needed"),
    done: Optional[list[str]] = typer.Option(None, help="CANDIDATE=FILE: the results.csv (or its folder) of a "
                                             "candidate's runs finished elsewhere (CANDIDATE: its config file "
                                             "name); their rows' dev scores stand in for the run folders and "
                                             "their test rows join the report (repeatable)"),
) -> None:
    """Choose per fold on dev speakers only (nested selection), then optionally run the test grids."""
    from copypaste_ser.experiments.choose import describe, run_tests, write_choice
    from copypaste_ser.experiments.grid_done import results_file

    done_files: dict[str, list[Path]] = {}
    for given in done or []:
        name, sep, path = given.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--done {given}: write CANDIDATE=FILE (the candidate's config file name, then "
                            f"the results.csv of its runs finished elsewhere)")
        done_files.setdefault(Path(name).name, []).append(results_file(Path(path)))
    choices, tests = write_choice(configs, out, force=force, earlier=earlier, done=done_files)
    typer.echo(describe(choices))
    typer.echo(f"-> {out / 'choice.json'}; test grids: {', '.join(str(t) for t in tests) or 'none'}")
    if run:
        typer.echo(f"report: {run_tests(choices, configs, tests, out, earlier=earlier, done=done_files)}")


@app.command()
def ensemble(
    grid: Path = typer.Argument(..., help="A grid's out folder (its run folders)"),
    out: Path = typer.Option(..., help="Folder for results.csv and predictions.json (merge them with "
                             "`copypaste-ser report GRID/results.csv OUT/results.csv`)"),
    split: str = typer.Option("test", help="test: the runs' stored test scores, clean and noisy; dev: "
                              "score each run on its dev speakers first, to choose on dev"),
    seed: Optional[list[str]] = typer.Option(None, help="Ensemble only these seeds (repeatable; default all)"),
    force: bool = typer.Option(False, help="Replace OUT's results.csv"),
) -> None:
    """Average the class probabilities of each fold's seeds (a seed ensemble) and score it."""
    from tqdm import tqdm

    from copypaste_ser.experiments.seed_ensemble import summary_table, write_ensemble

    summary = write_ensemble(grid, out, split, seed, force, progress=lambda it: tqdm(list(it), desc="ensemble", unit="cell"))
    typer.echo("\n".join(summary_table(summary)))
    typer.echo(f"-> {Path(out) / 'results.csv'}")


@app.command()
def fuse(
    config: Path = typer.Argument(..., help="The grid's config (YAML): its runs, corpus, folds and noisy tests"),
    out: Path = typer.Option(..., help="Folder for results.csv (merge it with the grid's in `report`)"),
    probe: str = typer.Option("rzstates-lr", help="The linear probe fitted in each fold: rzstates-lr or mfcc-lr"),
    weight: Optional[float] = typer.Option(None, help="The model's share, 0-1 (default: chosen on each run's dev)"),
    force: bool = typer.Option(False, help="Replace OUT's results.csv"),
) -> None:
    """Mix each run's class probabilities with a linear probe's in the same fold (late fusion)."""
    from tqdm import tqdm

    from copypaste_ser.experiments.probe_fusion import write_fusion

    chosen = write_fusion(config, out, probe, weight, force, progress=lambda it: tqdm(list(it), desc="fuse", unit="cell"))
    counts = ", ".join(f"{w:g}: {sum(c['weight'] == w for c in chosen)}" for w in sorted({c["weight"] for c in chosen}))
    typer.echo(f"-> {Path(out) / 'results.csv'}; runs per weight {counts} ({Path(out) / 'weights.csv'})")


@app.command("against-baselines")
def against_baselines_cmd(
    results: list[Path] = typer.Argument(..., help="results.csv files of grids, baselines or `score` (merged); "
                                         "LABEL=FILE names that file's models LABEL; FILE@INIT,... takes only "
                                         "those inits' rows"),
    test: str = typer.Option("clean", help="The test condition: clean, 10dB, 0dB"),
    reference: Optional[list[str]] = typer.Option(None, help="Compare every other model with this init or LABEL "
                                                  "(e.g. the same model without speaker normalisation) instead of the "
                                                  "baselines; repeat for several (e.g. the frozen model and whisper-lr), "
                                                  "Holm over all"),
    reference_scheme: str = typer.Option("none", help="The reference's CopyPaste scheme (e.g. n-cp to set "
                                         "approximate N-CP against exact N-CP), or same: each cell against "
                                         "the reference's cell of its own scheme (a tuned model against "
                                         "the frozen one, scheme by scheme)"),
    score: str = typer.Option("test", help="test (the test split's weighted F1) or dev (each run's dev "
                              "weighted F1: judge an approximation where choices may look)"),
    out: Optional[Path] = typer.Option(None, help="Also write the table to this markdown file"),
    force: bool = typer.Option(False, help="Replace OUT"),
) -> None:
    """Every model cell against every baseline in the same folds: paired tests over folds, Holm."""
    from copypaste_ser.experiments.baseline_comparison import compare_with_baselines
    from copypaste_ser.files.atomic import atomic_write_text
    from copypaste_ser.files.outputs import check_outputs, record_outputs

    files = check_outputs([out], force, "--out") if out else []
    table = compare_with_baselines(results, test, reference, score, reference_scheme)
    typer.echo(table)
    if out:
        atomic_write_text(out, table + "\n")
        record_outputs(files)
