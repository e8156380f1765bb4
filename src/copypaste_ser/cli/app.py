"""The typer application every CLI module registers its commands on (main.py: data, training;
predict.py: inference; experiments.py: grids, reports, baselines, selection)."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Speech emotion recognition with CopyPaste augmentation.")


def _version(value: bool) -> None:
    if value:
        from copypaste_ser import __version__
        typer.echo(f"copypaste-ser {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit")) -> None:
    """Speech emotion recognition with CopyPaste augmentation."""
