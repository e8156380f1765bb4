"""``python -m copypaste_ser``: the same as the ``copypaste-ser`` command."""

from .cli import main

if __name__ == "__main__":
    main()
