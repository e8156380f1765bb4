"""Shared helpers for the files the toolkit reads and writes: atomic writes, the output policy, text decoding."""
