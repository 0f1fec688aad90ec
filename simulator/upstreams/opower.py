"""ComEd's Opower portal (``cec.opower.com``) as the ``opower`` library (0.22) reads it, behind the
Exelon login of ``simulator.upstreams.b2c``; the meter's data and truth come from ``simulator.meter``.

Every route below ``/ei/edge/apis/`` wants ``Authorization: Bearer <opower_connect access token>``
(401 otherwise). Times are ISO 8601 with Chicago's offset (``2026-11-01T01:00:00-05:00``), money in
$ and energy in kWh, both unrounded (a read's cost is the exact sum of its intervals').

- ``GET multi-account-v1/cws/cec/customers?offset=0&batchSize=100&addressFilter=``: ``{"customers":
  [{"uuid", "utilityAccounts": [{"uuid", "preferredUtilityAccountId": <account number>,
  "meterType": "ELEC", "readResolution": <config>}]}]}``.
- ``GET DataBrowser-v1/cws/cost/utilityAccount/{uuid}?aggregateType=bill|day|hour|half_hour|quarter_hour
  &startDate=&endDate=``: ``{"reads": [{"startTime", "endTime", "value" (kWh), "providedCost" ($),
  "readType": "ACTUAL"|"ESTIMATED"}]}``, oldest first. Dates as the library sends them (local
  midnights with offset, or bare dates); a read is included when it starts at or after
  ``startDate`` and before the end of ``endDate``'s local day (the library asks that way and pages
  backwards until a window comes back empty, which it does before the history start). Bill reads
  ignore the window's end when absent. Sub-day windows over 720 hours, and day windows over 366
  days, answer 400 as the real API; an aggregate finer than the meter's ``readResolution`` too.
- ``GET DataBrowser-v1/cws/utilities/cec/utilityAccounts/{uuid}/reads``: the same reads without cost,
  ``{"reads": [{"startTime", "endTime", "consumption": {"value", "type"}}]}`` (bare dates).
- ``POST dsm-graphql-v1/cws/graphql`` ``{"query", "variables"}``, matched on the operation name in
  the query text: ``GetBills`` (published bills, the last ``$last``, oldest first: ``billDate``,
  ``timeInterval`` "start/end" (the period's local midnights), ``usageCharges`` (energy),
  ``segments`` with the service agreement (uuid = the utility account's), ``currentAmount`` (the
  bill's amount) and ``serviceQuantities`` (NET_USAGE kWh)); ``GetBillForecast`` (the period in
  progress: ``soFarUsage``/``soFarUsageCharges`` from the published reads, ``estimated*`` scaled to
  the period, no prior year); ``OpowerRegisters`` (one service point with a NET_USAGE register only,
  so the library adds no import/export split). Anything else: ``{"errors": [...]}``.

Control (no auth): ``GET /sim/meter[?start=YYYY-MM-DD&end=YYYY-MM-DD]`` the ground truth (see
``truth_payload``); ``POST /sim/meter/revoke`` invalidates every refresh token issued (a password
change).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import date, datetime
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from simulator.meter import AGGREGATES, BIN_S, TZ, Meter, Read, day_start, iso, serves
from simulator.model import Model
from simulator.upstreams import b2c

HOST = "cec.opower.com"
ROOT = "/ei/edge/apis/"
UTILITY = "cec"
_OPERATION = re.compile(r"\b(?:query|mutation)\s+(\w+)")
_MAX_WINDOW_S = {"day": 366 * 86400, **{k: 720 * 3600 for k in BIN_S}}


def identities(account_number: str) -> dict[str, str]:
    """Stable ids derived from the account number: customer, utility account, service point."""
    def make(kind: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"charging-sim:opower:{kind}:{account_number}"))
    return {"customer": make("customer"), "account": make("account"), "service_point": make("service-point"),
            "billing_account": make("billing-account")}


def opower_error(status: int, code: str, details: str) -> web.Response:
    return web.json_response({"error": {"httpStatus": status, "serviceErrorCode": code, "details": details}},
                             status=status)


def parse_when(text: str | None, *, end: bool) -> int | None:
    """A ``startDate``/``endDate`` as unix seconds: the instant itself for a start, the end of its
    local day for an end. Naive values and bare dates are Chicago time."""
    if not text:
        return None
    parsed = datetime.fromisoformat(text.strip().replace(" ", "+"))  # a raw '+' may arrive as a space
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=TZ)
    if end:
        return day_start(date.fromordinal(parsed.astimezone(TZ).date().toordinal() + 1))
    return int(parsed.timestamp())


def cost_read(read: Read) -> dict[str, Any]:
    return {"startTime": iso(read.start), "endTime": iso(read.end), "value": read.kwh, "providedCost": read.cost,
            "readType": "ESTIMATED" if read.estimated else "ACTUAL"}


def usage_read(read: Read) -> dict[str, Any]:
    return {"startTime": iso(read.start), "endTime": iso(read.end),
            "consumption": {"value": read.kwh, "type": "ESTIMATED" if read.estimated else "ACTUAL"}}


def agreement(ids: dict[str, str], account_number: str) -> dict[str, Any]:
    return {"uuid": ids["account"], "utilityId": account_number, "serviceType": "ELECTRICITY"}


def bills_payload(meter: Meter, ids: dict[str, str], now: float, last: int | None) -> dict[str, Any]:
    bills = meter.bills(now)
    if last is not None:
        bills = bills[-last:] if last > 0 else []
    nodes = [{
        "billDate": b["bill_date"], "timeInterval": f"{b['start']}/{b['end']}",
        "usageCharges": {"value": b["energy_charges"]},
        "segments": [{
            "serviceAgreement": agreement(ids, meter.cfg.account_number),
            "currentAmount": {"value": b["amount"]},
            "serviceQuantities": [{"unit": "KWH", "serviceQuantityIdentifier": "NET_USAGE",
                                   "serviceQuantity": {"value": b["kwh"]}}],
        }],
    } for b in bills]
    return {"data": {"billingAccountsConnection": {"pageInfo": {"hasNextPage": False}, "edges": [
        {"node": {"urn": f"urn:opower:billing-account:uuid:{ids['billing_account']}", "bills": nodes}}]}}}


def forecast_payload(meter: Meter, ids: dict[str, str], now: float) -> dict[str, Any]:
    f = meter.forecast(now)
    segment = {
        "serviceAgreement": {"uuid": ids["account"]},
        "estimatedUsage": {"value": f["estimated_kwh"], "unit": "KWH"},
        "estimatedUsageCharges": {"value": f["estimated_cost"]},
        "soFarUsage": {"value": f["so_far_kwh"]}, "soFarUsageCharges": {"value": f["so_far_cost"]},
        "priorYearUsage": None, "priorYearUsageCharges": None,
    }
    forecast = {"timeInterval": f"{f['start']}/{f['end']}", "currentDateTime": f["current"], "segments": [segment]}
    return {"data": {"billingAccountsConnection": {"edges": [{"node": {"billForecast": forecast}}]}}}


def registers_payload(meter: Meter, ids: dict[str, str], now: float) -> dict[str, Any]:
    available = f"{iso(meter.start)}/{iso(meter.published_until(now))}"
    point = {"uuid": ids["service_point"], "registers": [
        {"serviceQuantityIdentifier": "NET_USAGE", "unitOfMeasure": "KWH", "availableReadsTimeInterval": available}]}
    node = {"utilityId": meter.cfg.account_number, "serviceType": "ELECTRICITY",
            "servicePointsConnection": {"edges": [{"node": point}]}}
    return {"data": {"billingAccountByAuthContext": {"serviceAgreementsConnection": {"edges": [{"node": node}]}}}}


def exelon_account(meter: Meter) -> dict[str, Any]:
    """The account list's entry (``eudapi.comed.com``)."""
    return {"accountNumber": meter.cfg.account_number, "status": "Active", "isDefaultProfile": True,
            "isResidential": True, "companyCode": "ComEd", "customerName": "SIMULATED HOME",
            "PremiseInfo": [{"mainAddress": {"townDetail": {"name": "CHICAGO", "stateOrProvince": "IL"}}}]}


def truth_payload(meter: Meter, creds: b2c.Credentials, ids: dict[str, str], now: float,
                  first: date | None = None, last: date | None = None) -> dict[str, Any]:
    """``GET /sim/meter``: ``{now, time_zone, history_start, published_until, account: {number,
    customer_uuid, uuid, read_resolution}, days: [{day, complete, home_kwh, ev_kwh, base_kwh,
    home_cost, ev_cost, ev_share}], bills: [{start, end, bill_date, published, kwh, energy_charges,
    fixed, capacity, amount, ev_kwh, ev_cost}], forecast: {start, end, current, so_far_kwh,
    so_far_cost, estimated_kwh, estimated_cost}, credentials: {refresh_tokens_issued,
    refresh_tokens_valid, access_tokens_valid, refresh_token_lifetime, revoked_at}}``."""
    return {
        "now": now, **meter.truth(now, first, last),
        "account": {"number": meter.cfg.account_number, "customer_uuid": ids["customer"], "uuid": ids["account"],
                    "read_resolution": meter.cfg.read_resolution},
        "credentials": creds.status(now),
    }


def routes(model: Model) -> list[web.RouteDef]:
    """Login, Opower and ``/sim/meter`` routes for the main listener (register before Tessie's)."""
    cfg = model.scenario.meter
    meter = Meter(cfg, model.scenario.tariff, model.prices, model.origin, model.scenario.telemetry.history,
                  lambda: [s.by_interval for s in model.truth.sessions])
    creds = b2c.Credentials(cfg)
    ids = identities(cfg.account_number)

    def now() -> float:
        model.sync()  # sessions are complete up to now
        return model.now

    def authorized(request: web.Request) -> web.Response | None:
        if not b2c.host_ok(request, HOST):
            raise web.HTTPNotFound()
        if not creds.access_ok(request.headers.get("Authorization"), "opower", model.now):
            return opower_error(401, "UNAUTHORIZED", "Missing or invalid access token")
        return None

    async def customers(request: web.Request) -> web.Response:
        if (denied := authorized(request)) is not None:
            return denied
        account = {"uuid": ids["account"], "utilityAccountId": cfg.account_number,
                   "preferredUtilityAccountId": cfg.account_number, "meterType": "ELEC",
                   "readResolution": cfg.read_resolution, "servicePointId": ids["service_point"], "isActive": True}
        return web.json_response({"customers": [{"uuid": ids["customer"], "type": "RESIDENTIAL",
                                                 "utilityCustomerId": cfg.account_number,
                                                 "utilityAccounts": [account]}]})

    def window(request: web.Request) -> tuple[str, int, int] | web.Response:
        """(aggregate, start, end) of a reads request, or the error answer."""
        if request.match_info["uuid"] != ids["account"]:
            return opower_error(404, "UTILITY_ACCOUNT_NOT_FOUND", "Unknown utility account")
        kind = request.query.get("aggregateType", "")
        if kind not in AGGREGATES or not serves(cfg.read_resolution, kind):
            return opower_error(400, "INVALID_AGGREGATE_TYPE", f"aggregateType {kind!r} is not available")
        try:
            start = parse_when(request.query.get("startDate"), end=False)
            end = parse_when(request.query.get("endDate"), end=True)
        except ValueError:
            return opower_error(400, "INVALID_DATE", "startDate/endDate must be ISO 8601")
        lo = start if start is not None else meter.start
        hi = end if end is not None else int(model.now) + 1
        if kind in _MAX_WINDOW_S and hi - lo > _MAX_WINDOW_S[kind]:
            limit = "720 hours" if kind in BIN_S else "365 days"
            return opower_error(400, "INVALID_RANGE", f"Provided range must be no more than {limit}.")
        return kind, lo, hi

    def reads_route(row: Callable[[Any], dict[str, Any]]) -> Callable[[web.Request], Awaitable[web.Response]]:
        """DataBrowser's cost and usage-only reads: the same window, each read shaped by `row`."""
        async def handler(request: web.Request) -> web.Response:
            if (denied := authorized(request)) is not None:
                return denied
            w = window(request)
            if isinstance(w, web.Response):
                return w
            return web.json_response({"reads": [row(r) for r in meter.reads(*w, now())], "unit": "KWH"})
        return handler

    cost, usage = reads_route(cost_read), reads_route(usage_read)

    async def graphql(request: web.Request) -> web.Response:
        if (denied := authorized(request)) is not None:
            return denied
        try:
            body = json.loads(await request.read())
            query, variables = str(body.get("query", "")), body.get("variables") or {}
        except (ValueError, AttributeError):
            return web.json_response({"errors": [{"message": "Invalid JSON payload"}]}, status=400)
        match = _OPERATION.search(query)
        operation = match[1] if match else ""
        t = now()
        if operation == "GetBills":
            last = variables.get("last")
            return web.json_response(bills_payload(meter, ids, t, last if isinstance(last, int) else None))
        if operation == "GetBillForecast":
            return web.json_response(forecast_payload(meter, ids, t))
        if operation == "OpowerRegisters":
            return web.json_response(registers_payload(meter, ids, t))
        return web.json_response({"errors": [{"message": f"Operation {operation or '(anonymous)'} is not "
                                                         "supported by this simulator",
                                              "extensions": {"classification": "ValidationError"}}]})

    async def sim_meter(request: web.Request) -> web.Response:
        try:
            first = date.fromisoformat(request.query["start"]) if request.query.get("start") else None
            last = date.fromisoformat(request.query["end"]) if request.query.get("end") else None
        except ValueError:
            return web.json_response({"error": "start/end: use YYYY-MM-DD"}, status=400)
        if first and last and last < first:
            return web.json_response({"error": "end: before start; use end >= start"}, status=400)
        return web.json_response(truth_payload(meter, creds, ids, now(), first, last))

    async def revoke(request: web.Request) -> web.Response:
        return web.json_response({"revoked": creds.revoke(now())})

    api = ROOT
    return [
        web.get("/sim/meter", sim_meter),
        web.post("/sim/meter/revoke", revoke),
        *b2c.routes(cfg, creds, now, lambda: exelon_account(meter)),
        web.get(f"{api}multi-account-v1/cws/{UTILITY}/customers", customers),
        web.get(api + "DataBrowser-v1/cws/cost/utilityAccount/{uuid}", cost),
        web.get(api + f"DataBrowser-v1/cws/utilities/{UTILITY}/utilityAccounts/" + "{uuid}/reads", usage),
        web.post(f"{api}dsm-graphql-v1/cws/graphql", graphql),
    ]


def is_opower_path(path: str) -> bool:
    """Paths with their own bearer tokens (or none), outside the Tessie token's reach."""
    return path.startswith(ROOT) or b2c.is_login_path(path)


def endpoint(path: str) -> str | None:
    """The short name faults target (``opower/<name>``), or None when the path is not the meter's."""
    if path.startswith(ROOT):
        rest = path[len(ROOT):]
        if rest.startswith("multi-account-v1/"):
            return "customers"
        if rest.startswith("DataBrowser-v1/cws/cost/"):
            return "cost"
        if rest.startswith("DataBrowser-v1/"):
            return "reads"
        if rest.startswith("dsm-graphql-v1/"):
            return "graphql"
        return rest
    if path.startswith("/mobile/custom/"):
        return "accounts"
    if path.endswith("/oauth2/v2.0/token"):
        return "token"
    if "/DisplayControlAction/" in path:
        return "mfa"
    if b2c.is_login_path(path):
        return "login"
    return None
