"""The utility's meter data over HTTP: per local day and per bill, each with the EV's share and both
costs of the EV energy (ours and the utility's), and what to tune when they disagree. Read-only; the
charging-meter component writes the data into the same SQLite file."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from billing.tariff import Tariff
from meter.reconcile import Reconciliation
from meter.overview import MeterOverview, meter_overview
from session_store.api import BadParameter, _json, _time
from session_store.records import rounded
from session_store.storage import Storage

DEFAULT_DAYS = 40
BILL_FIELDS = ("ev_kwh", "ev_share", "ev_cost_computed", "ev_cost_utility", "discrepancy")


def _reconciliation(r: Reconciliation) -> dict[str, Any]:
    return rounded({"home_kwh": r.home_kwh, "home_cost": r.home_cost, "ev_kwh": r.ev_kwh,
                    "non_ev_kwh": r.non_ev_kwh, "ev_share": r.ev_share, "ev_cost_computed": r.ev_cost_computed,
                    "ev_cost_utility": r.ev_cost_utility, "discrepancy": r.discrepancy,
                    "effective_cents_per_kwh": None if not r.home_kwh or r.home_cost is None
                    else r.home_cost / r.home_kwh * 100}) | {"hint": r.hint or None}


def overview_json(tables: MeterOverview, zone: ZoneInfo) -> dict[str, Any]:
    def day(moment: float) -> str:
        return datetime.fromtimestamp(moment, zone).date().isoformat()

    return {
        "days": [{"day": d, "reads": n, "corrected_reads": c, **_reconciliation(r)} for d, n, c, r in tables.days],
        "bills": [{"start": b.start, "end": b.end, "period_start": day(b.start), "period_end": day(b.end),
                   "bill_date": b.bill_date, "estimated": b.estimated, "kwh": round(b.kwh, 3),
                   "amount": round(b.amount, 2),
                   "usage_charges": None if b.usage_charges is None else round(b.usage_charges, 2),
                   "other_charges": None if b.usage_charges is None else round(b.amount - b.usage_charges, 2),
                   **{key: value for key, value in _reconciliation(r).items() if key in BILL_FIELDS}}
                  for b, r in tables.bills],
        "hints": list(tables.hints),
    }


def add_meter_routes(app: web.Application, storage: Storage, tariff: Tariff, zone: ZoneInfo, tolerance: float) -> None:
    """GET /api/meter?from=&to= (default: the last 40 days)."""
    reader = storage.reader()

    async def meter(request: web.Request) -> web.StreamResponse:
        try:
            end = _time(request, "to", zone) or time.time()
            start = _time(request, "from", zone) or end - DEFAULT_DAYS * 86400
            if end <= start:
                raise BadParameter("to: must be after from")
        except BadParameter as error:
            return _json({"error": str(error)}, status=400)
        tables = await asyncio.to_thread(meter_overview, reader, tariff, start, end, tolerance)
        return _json(overview_json(tables, zone))

    app.router.add_get("/api/meter", meter)
