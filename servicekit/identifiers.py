"""The formats of the identifiers every part checks: configuration keys and the API's parameters alike."""
from __future__ import annotations

import re

_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_vin(text: str) -> bool:
    """A vehicle identification number: 17 characters, no I, O or Q (case-insensitive)."""
    return bool(_VIN.match(text.upper()))


def is_uuid(text: str) -> bool:
    return bool(_UUID.match(text))
