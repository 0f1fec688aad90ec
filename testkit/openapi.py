"""The session store's documented answers (its OpenAPI description), to validate the real ones against."""
from __future__ import annotations

from typing import Any


def schema_of(path: str) -> dict[str, Any]:
    """The JSON schema of a GET endpoint's 200 answer, e.g. schema_of("/api/sessions")."""
    from session_store.openapi import OPENAPI
    return OPENAPI["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
