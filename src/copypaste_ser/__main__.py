"""``python -m copypaste_ser``: the same as the ``copypaste-ser`` command."""

from copypaste_ser.cli.main import main

if __name__ == "__main__":
    main()
