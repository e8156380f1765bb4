"""Checks of option and config values (type, range, allowed set), each a one-line UserError.

Every command validates all its values here before it reads or writes anything, so a typo
never leaves a half-made run folder or a feature cache behind. A rule names what is allowed;
the ``source`` of a value is the CLI option (``--batch-size``) or ``file:key`` for a config
file (``grid.yaml:train.epochs``).

    check("--lr", value, Number(gt=0))
    check_fields(values, TRAIN_RULES, "cfg.yaml:")   # every key of a mapping
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copypaste_ser.errors import UserError

#: Seeds seed numpy's and torch's generators, which take 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1
#: SNRs (dB) a test condition may use: below -20 dB the speech is gone, above 60 dB it is clean.
SNR_RANGE = (-20.0, 60.0)
#: The longest list a config or option may hold (seeds, inits, folds ...): bounds validation time.
MAX_LIST = 10_000
#: Characters a name from data (fold, speaker, label, utterance id) may never hold: it becomes a
#: file or folder name, so a separator would let it climb out of the output folder.
_UNSAFE_CHARS = frozenset("/\\\0") | {chr(c) for c in range(32)} | {chr(127)}
MAX_NAME = 200


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be one component of a path (None when it can)."""
    if not isinstance(name, str) or not name.strip():
        return "is empty"
    if name in (".", ".."):
        return f"is {name!r}, which names a folder, not a file"
    bad = sorted({c for c in name if c in _UNSAFE_CHARS})
    if bad:
        return f"holds {''.join(bad)!r} (path separators and control characters are not allowed)"
    if name != name.strip():
        return "has leading or trailing spaces"
    if len(name) > MAX_NAME:
        return f"is {len(name)} characters long; at most {MAX_NAME} are allowed"
    return None


def check_name(name: object, what: str, source: str) -> str:
    """``name`` (a fold, speaker, label or utterance id read from data) as a safe path component,
    else a one-line UserError naming where it came from."""
    problem = name_problem(name)
    if problem:
        raise UserError(f"{source}: {what} {_show(name)} {problem}; rename it in the data "
                        f"(it becomes a file or folder name)")
    return name  # type: ignore[return-value]


def child_path(parent: str | Path, name: str, what: str = "name") -> Path:
    """``parent / name`` for a name from data, refused unless it stays inside ``parent``."""
    check_name(name, what, str(parent))
    path = Path(parent) / name
    if Path(os.path.abspath(path)).parent != Path(os.path.abspath(parent)):
        raise UserError(f"{parent}: {what} {name!r} would write outside the folder; rename it in the data")
    return path


class Rule:
    """One value's constraint; ``problem`` returns None when ``value`` passes."""

    def problem(self, value: Any) -> str | None:
        raise NotImplementedError


@dataclass(frozen=True)
class Number(Rule):
    """A finite int (``integer``) or float in a range; booleans are never numbers."""

    integer: bool = False
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    optional: bool = False          # None allowed (means "unset")

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        bounds = []
        for sign, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le)):
            if bound is not None:  # 4294967295, not 4.29497e+09
                bounds.append(f"{sign} {int(bound) if float(bound).is_integer() else bound}")
        text = f"{kind} {' and '.join(bounds)}".strip()
        return text + (" (or unset)" if self.optional else "")

    def problem(self, value: Any) -> str | None:
        if value is None and self.optional:
            return None
        ok_type = (int,) if self.integer else (int, float)
        fits = (not isinstance(value, bool) and isinstance(value, ok_type) and math.isfinite(value)
                and (self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le))
        return None if fits else f"must be {self.describe()}, not {_show(value)}"


@dataclass(frozen=True)
class OneOf(Rule):
    choices: tuple
    optional: bool = False

    def problem(self, value: Any) -> str | None:
        if (value is None and self.optional) or (isinstance(value, str) and value in self.choices):
            return None
        return f"must be one of {', '.join(map(str, self.choices))}, not {_show(value)}"


@dataclass(frozen=True)
class Kind(Rule):
    """A value of one Python type (str, bool, dict), optionally None; strings must not be empty."""

    type: type
    optional: bool = False

    def problem(self, value: Any) -> str | None:
        if value is None and self.optional:
            return None
        names = {str: "a text", bool: "true or false", dict: "a mapping of options"}
        if not isinstance(value, self.type) or (self.type is str and not value.strip()):
            return f"must be {names.get(self.type, self.type.__name__)}, not {_show(value)}"
        return None


@dataclass(frozen=True)
class ListOf(Rule):
    """A list without repeats whose every item passes ``item``; empty only with ``empty_ok``."""

    item: Rule
    empty_ok: bool = False
    max_items: int = MAX_LIST  # options and configs; a corpus's id lists may be far longer

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, list) or not (value or self.empty_ok):
            what = "a list" if self.empty_ok else "a non-empty list"
            return f"must be {what} (e.g. [a, b]), not {_show(value)}"
        for v in value:
            p = self.item.problem(v)
            if p:  # "item 'clen' must be one of clean, clean+noise"
                return f"item {_show(v)} {p.rsplit(', not ', 1)[0]}"
        if len(value) > self.max_items:
            return f"has {len(value)} items; at most {self.max_items} are allowed"
        seen: list = []  # items may be unhashable (lists); sort keys keep this linear-log
        for v in value:
            seen.append(repr(v))
        order = sorted(range(len(seen)), key=seen.__getitem__)
        for a, b in zip(order, order[1:]):
            if seen[a] == seen[b]:
                return f"lists {_show(value[min(a, b)])} twice"
        return None


@dataclass(frozen=True)
class Fields(Rule):
    """A mapping whose keys all have a rule (a nested config section such as ``features``)."""

    rules: Mapping[str, Rule]

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, dict):
            return f"must be a mapping of options, not {_show(value)}"
        for key, v in value.items():
            if key not in self.rules:
                return f"unknown option {key!r} (known: {', '.join(self.rules)})"
            p = self.rules[key].problem(v)
            if p:
                return f"{key} {p}"
        return None


@dataclass(frozen=True)
class Check(Rule):
    """Any other test: ``test(value)`` is True when allowed; ``allowed`` says what is."""

    test: Callable[[Any], bool]
    allowed: str

    def problem(self, value: Any) -> str | None:
        return None if self.test(value) else f"must be {self.allowed}, not {_show(value)}"


def _show(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check(source: str, value: Any, rule: Rule) -> None:
    """Raise ``UserError("<source>: must be ..., not ...")`` unless ``value`` passes ``rule``."""
    problem = rule.problem(value)
    if problem:
        raise UserError(f"{source}: {problem}")


def check_fields(values: Mapping[str, Any], rules: Mapping[str, Rule], prefix: str,
                 names: Callable[[str], str] | None = None) -> None:
    """Check each key of ``values`` that has a rule; the source is ``prefix + key`` (or
    ``names(key)``, e.g. the CLI option of a field)."""
    for key, value in values.items():
        if key in rules:
            check(names(key) if names else f"{prefix}{key}", value, rules[key])


def option_name(field: str) -> str:
    """The CLI option of a config field: ``batch_size`` -> ``--batch-size``."""
    return "--" + field.replace("_", "-")


def check_seeds(seeds: Sequence[int], source: str = "--seed") -> None:
    """Every seed in range, none given twice (two runs of one seed are not two replicates)."""
    for s in seeds:
        check(source, s, SEED)
    if len(seeds) > MAX_LIST:
        raise UserError(f"{source}: {len(seeds)} seeds; at most {MAX_LIST} are allowed")
    if len(set(seeds)) != len(seeds):
        twice = next(s for i, s in enumerate(seeds) if s in seeds[:i])
        raise UserError(f"{source}: seed {twice} is given twice; give each seed once")


SEED = Number(integer=True, ge=0, le=MAX_SEED)
SNR = Number(ge=SNR_RANGE[0], le=SNR_RANGE[1])
#: ``predict --window``: shorter windows hold too few frames for the model (10 voiced frames).
WINDOW = Number(ge=0.1, le=3600, optional=True)
WORKERS = Number(integer=True, ge=1, le=256)
