"""Bridges to other toolkits' data formats (``copypaste_ser.interop.lhotse``: lhotse CutSets)."""
