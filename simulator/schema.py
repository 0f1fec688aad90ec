"""Strict readers for scenario YAML: durations, typed keys, unknown-key detection.

Every problem raises ``ScenarioError`` with a single line of the form
``<key path>: <what is wrong>; <how to fix it>`` so a typo in a scenario fails loudly at
load time instead of silently simulating something else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_REQUIRED = object()
_DURATION = re.compile(r"^\s*(-)?\s*((?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)\s*)+|\d+(?:\.\d+)?)\s*$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class ScenarioError(ValueError):
    """A scenario (or a control-API event/fault) is invalid; the message is one line."""


def fail(path: str, problem: str, fix: str) -> ScenarioError:
    """Build the one-line error for ``path``."""
    return ScenarioError(f"{path or 'scenario'}: {problem}; {fix}")


def parse_duration(value: Any, path: str, *, signed: bool = False) -> float:
    """Seconds from ``90``, ``"90s"``, ``"10m"``, ``"2h30m"``, ``"1d"`` (``-`` only if signed)."""
    if isinstance(value, bool):
        raise fail(path, f"got {value!r}", "use a duration such as 90, 90s, 10m, 2h30m or 1d")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        sign, body = match.groups()
        seconds = sum(float(n) * _UNIT_SECONDS[u or None] for n, u in _PART.findall(body))
        seconds *= -1.0 if sign else 1.0
    else:
        raise fail(path, f"got {value!r}", "use a duration such as 90, 90s, 10m, 2h30m or 1d")
    if seconds < 0 and not signed:
        raise fail(path, f"got negative duration {value!r}", "use a duration >= 0")
    return seconds


def _type_name(value: Any) -> str:
    return type(value).__name__ if value is not None else "null"


class Section:
    """One mapping of the scenario; remembers which keys were read so leftovers can be rejected."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise fail(path, f"expected a mapping, got {_type_name(data)}", "write key: value pairs")
        bad = [k for k in data if not isinstance(k, str)]
        if bad:
            raise fail(path, f"key {bad[0]!r} is not a string", "quote the key")
        self.data: Mapping[str, Any] = data
        self.path = path
        self._used: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = _REQUIRED) -> Any:
        self._used.add(key)
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise fail(self.key_path(key), "missing", "add this required key")
        return default

    def str(self, key: str, default: Any = _REQUIRED, *, choices: Iterable[str] | None = None) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and choices is None:
            value = str(value)
        if not isinstance(value, str):
            raise fail(self.key_path(key), f"expected text, got {_type_name(value)}", "quote the value")
        if choices is not None and value not in choices:
            raise fail(self.key_path(key), f"got {value!r}", f"use one of {', '.join(choices)}")
        return value

    def bool(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        if not isinstance(value, bool):
            raise fail(self.key_path(key), f"got {value!r}", "use true or false")
        return value

    def int(self, key: str, default: Any = _REQUIRED, *, min: int | None = None, max: int | None = None) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(self.key_path(key), f"got {value!r}", "use a whole number")
        self._check_range(key, value, min, max)
        return value

    def float(self, key: str, default: Any = _REQUIRED, *, min: float | None = None, max: float | None = None) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(self.key_path(key), f"got {value!r}", "use a number")
        self._check_range(key, float(value), min, max)
        return float(value)

    def duration(self, key: str, default: Any = _REQUIRED, *, signed: bool = False) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _REQUIRED:
            return value
        return parse_duration(value, self.key_path(key), signed=signed)

    def section(self, key: str, *, required: bool = False) -> Section:
        """A nested mapping; an absent optional one reads as empty (all defaults)."""
        value = self.raw(key, _REQUIRED if required else None)
        return Section({} if value is None else value, self.key_path(key))

    def list(self, key: str) -> list[tuple[str, Any]]:
        """``(path, item)`` pairs of a list value (absent or null = empty)."""
        value = self.raw(key, None)
        if value is None:
            return []
        if not isinstance(value, list):
            raise fail(self.key_path(key), f"expected a list, got {_type_name(value)}", "write a YAML list (- item)")
        return [(f"{self.key_path(key)}[{i}]", item) for i, item in enumerate(value)]

    def finish(self) -> None:
        """Reject keys nobody asked for (typos, unsupported options)."""
        for key in self.data:
            if key not in self._used:
                known = ", ".join(sorted(self._used)) or "nothing"
                raise fail(self.key_path(key), "unknown key", f"use one of {known}")

    def _check_range(self, key: str, value: float, lo: float | None, hi: float | None) -> None:
        if lo is not None and value < lo:
            raise fail(self.key_path(key), f"got {value!r}", f"use a value >= {lo}")
        if hi is not None and value > hi:
            raise fail(self.key_path(key), f"got {value!r}", f"use a value <= {hi}")
