"""`GET /api/charges`: each car's own charges (Tessie's charge history), home ones with the Wall Connector
session they match and the charging efficiency, away ones with the place and Tessie's cost."""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from session_store.api import MAX_LIMIT, _choice, _int, _json, _time, filter_values, guarded
from session_store.storage import Storage


def add_charge_routes(app: web.Application, storage: Storage, zone: ZoneInfo) -> None:
    async def charges(request: web.Request) -> web.StreamResponse:
        """`from`/`to` select the charges overlapping them."""
        start, end = _time(request, "from", zone), _time(request, "to", zone)
        away = {"true": True, "false": False, "all": None}[_choice(request, "away", ("true", "false", "all"), "all")]
        limit = _int(request, "limit", 100, 1, MAX_LIMIT)
        chosen = filter_values(request, "vehicle") or ()
        found = storage.vehicle_charges(vins=chosen, vehicles=chosen, away=away, start=start, end=end, limit=limit)
        body: dict[str, Any] = {"charges": [c.public() for c in found], "count": len(found)}
        return _json(body)

    app.router.add_get("/api/charges", guarded(charges))
