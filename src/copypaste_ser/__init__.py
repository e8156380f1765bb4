"""copypaste-ser: speech emotion recognition with CopyPaste augmentation."""

__version__ = "0.1.0"
