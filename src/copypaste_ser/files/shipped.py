"""Where the files that ship inside the package lie (found from here, so every stage may ask)."""

from __future__ import annotations

from pathlib import Path


def configs_dir() -> Path:
    """The shipped grid configs, one folder per corpus (the repository's ``configs/``, also inside
    an installed wheel), e.g. ``copypaste-ser grid "$(python -c 'import copypaste_ser as c; print(c.configs_dir())')/emodb/cpu.yaml"``.
    Their ``data:`` and ``out:`` are relative to the config file: copy one out and edit them."""
    return Path(__file__).resolve().parents[1] / "configs"
