"""copypaste-ser: speech emotion recognition with CopyPaste augmentation."""

import os

# Bit-identical CPU runs (reproducible.py): MKL reads this once, when torch loads it.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"
