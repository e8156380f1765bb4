"""copypaste-ser: speech emotion recognition with CopyPaste augmentation.

Importing the package loads nothing heavy: ``from copypaste_ser.augment import CopyPaste``
works with only numpy and torch installed (``pip install copypaste-ser``); the CLI needs
``pip install 'copypaste-ser[train]'``.
"""

from pathlib import Path

__version__ = "0.3.0"


def configs_dir() -> Path:
    """The shipped grid configs, one folder per corpus (the repository's ``configs/``, also inside
    an installed wheel), e.g. ``copypaste-ser grid "$(python -c 'import copypaste_ser as c; print(c.configs_dir())')/emodb/cpu.yaml"``.
    Their ``data:`` and ``out:`` are relative to the config file: copy one out and edit them."""
    return Path(__file__).resolve().parent / "configs"
