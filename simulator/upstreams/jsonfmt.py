"""Compact JSON with fixed decimals per key, the way the Wall Connector prints numbers.

Real units print most floats with one decimal and some with three (``61.000``); ``json.dumps``
would print ``61.0``. Types stay faithful: floats always carry a decimal point, ints never do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def fixed(value: float, decimals: int) -> str:
    """``value`` with exactly ``decimals`` decimals, never ``-0.0``."""
    text = f"{value:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text


def dumps_fixed(items: Iterable[tuple[str, Any, int | None]]) -> bytes:
    """Serialise ``(key, value, decimals)`` triples as one compact JSON object, in order.
    ``decimals`` applies to floats; ``None`` means plain JSON for the value."""
    parts = []
    for key, value, decimals in items:
        if isinstance(value, float) and decimals is not None:
            text = fixed(value, decimals)
        else:
            text = json.dumps(value, separators=(",", ":"))
        parts.append(f"{json.dumps(key)}:{text}")
    return ("{" + ",".join(parts) + "}").encode()


def dumps(value: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(value, separators=(",", ":")).encode()
