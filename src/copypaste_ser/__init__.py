"""copypaste-ser: speech emotion recognition with CopyPaste augmentation.

Importing the package loads nothing heavy: ``from copypaste_ser.augment import CopyPaste``
works with only numpy and torch installed (``pip install copypaste-ser``); the CLI needs
``pip install 'copypaste-ser[train]'``.
"""

from copypaste_ser.files.shipped import configs_dir  # noqa: F401  (copypaste_ser.configs_dir())

__version__ = "0.3.0"
