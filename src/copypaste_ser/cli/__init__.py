"""The ``copypaste-ser`` command: a thin typer layer over the Python API (main.py registers the commands)."""
