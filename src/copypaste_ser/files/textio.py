"""Reading users' text files (CSV lists, configs, rules): UTF-8, with or without a BOM.

Anything else is a one-line error naming the file and what it seems to be encoded in, never
a UnicodeDecodeError traceback or silently mangled names.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from copypaste_ser.errors import UserError

_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"), (codecs.BOM_UTF16_LE, "UTF-16"),
         (codecs.BOM_UTF16_BE, "UTF-16"))


def decode_text(data: bytes, source: str) -> str:
    """``data`` as UTF-8 (a leading BOM dropped), else a UserError naming ``source``."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise UserError(f"{source}: is {name} text; save it as UTF-8 and try again")
    if b"\x00" in data:
        raise UserError(f"{source}: holds NUL bytes: it looks like binary data, not a text file; "
                        f"give the UTF-8 text file instead")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{source}: is not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}; it looks like "
                        f"text in another encoding, Latin-1 or a Windows code page?); save it as UTF-8 and "
                        f"try again") from None


def read_text(path: str | Path, option: str = "") -> str:
    """The text of ``path`` (UTF-8); unreadable or not UTF-8: one line naming it."""
    where = f"{option}: {path}" if option else str(path)
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise UserError(f"{where}: is a folder, not a file") from None
    except FileNotFoundError:
        raise UserError(f"{where}: no such file") from None
    except OSError as e:
        raise UserError(f"{where}: cannot read it ({e.strerror})") from None
    return decode_text(data, where)


__all__ = ["decode_text", "read_text"]


def load_yaml(path: str | Path, option: str = ""):
    """A user's YAML file (UTF-8, safe tags only); a key given twice in one mapping is refused
    rather than the last one silently winning."""
    import yaml

    class _UniqueKeys(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise UserError(f"{path}:{key_node.start_mark.line + 1}: key {key!r} is given twice; keep one")
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    _UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    text = read_text(path, option)
    try:
        return yaml.load(text, Loader=_UniqueKeys)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        where = f"{option}: {path}" if option else str(path)
        raise UserError(f"{where}: not valid YAML ({str(e).splitlines()[0]})") from None
