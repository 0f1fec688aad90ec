"""Fault injection at the HTTP edge: an aiohttp middleware plus pure body mutators.

Each listener classifies its requests as ``(upstream, charger, relative path)``; the first
active fault in the registry that matches is applied. Body-mutating kinds (malformed,
truncated, nan, wrong_types, missing_fields, big_body) run the real handler first and damage
its answer, so the rest of the payload stays realistic.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from simulator.clock import Clock
from simulator.faults import ActiveFault, FaultRegistry
from simulator.upstreams import opower

log = logging.getLogger("simulator.faults")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Where = tuple[str, str | None, str]
_NAN = "__SIM_NAN__"


# --- classification -----------------------------------------------------------------------------


def classify_main(request: web.Request) -> Where | None:
    """Main listener: /sim is never faulted; /api and /rrtp/ServletFeed are ComEd (matched by their
    ``type``: ``comed/daynexttomorrow``); /api/1/... Fleet; the utility meter's paths ``opower`` by a
    short endpoint name (login, mfa, token, accounts, customers, cost, reads, graphql); the rest Tessie."""
    path = request.path
    if path == "/sim" or path.startswith("/sim/"):
        return None
    meter = opower.endpoint(path)
    if meter is not None:
        return "opower", None, meter
    if path in ("/api", "/rrtp/ServletFeed"):
        return "comed", None, request.query.get("type", "")
    if path.startswith("/api/1/"):
        return "fleet", None, path[len("/api/1/"):]
    return "tessie", None, path.lstrip("/")


def classify_charger(name: str) -> Callable[[web.Request], Where]:
    def classify(request: web.Request) -> Where:
        path = request.path
        rel = path[len("/api/1/"):] if path.startswith("/api/1/") else path.lstrip("/")
        return "wall_connector", name, rel

    return classify


# --- body mutators (pure) -----------------------------------------------------------------------


def malformed(body: bytes) -> bytes:
    """Invalid JSON that still looks like the real thing (first ``:`` becomes ``=``)."""
    return body.replace(b":", b"=", 1) if b":" in body else b"{" + body


def truncated(body: bytes, cut: int) -> bytes:
    return body[: max(0, len(body) - cut)]


def _walk_keys(value: Any, fields: set[str], fn: Callable[[dict[str, Any], str], None]) -> None:
    if isinstance(value, dict):
        for key in list(value):
            if key in fields:
                fn(value, key)
            elif key in value:
                _walk_keys(value[key], fields, fn)
    elif isinstance(value, list):
        for item in value:
            _walk_keys(item, fields, fn)


def with_nan(body: bytes, fields: tuple[str, ...]) -> bytes:
    """Bare ``nan`` tokens (invalid JSON) for the given keys, default ``avg_startup_temp``."""
    data = json.loads(body)
    wanted = set(fields or ("avg_startup_temp",))
    if not fields and isinstance(data, dict) and "avg_startup_temp" not in data:
        numeric = [k for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        wanted = set(numeric[:1])

    def put(d: dict[str, Any], key: str) -> None:
        d[key] = _NAN

    _walk_keys(data, wanted, put)
    return json.dumps(data, separators=(",", ":")).replace(f'"{_NAN}"', "nan").encode()


def _retype(value: Any, style: str) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return {"value": value} if style == "object" else str(value)
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return value
    return value


def wrong_types(body: bytes, fields: tuple[str, ...], style: str) -> bytes:
    """Numbers become strings (or ``{"value": n}`` objects) and numeric strings become numbers,
    for the listed keys or, without a list, every scalar."""
    data = json.loads(body)

    def convert(value: Any, selected: bool) -> Any:
        if isinstance(value, dict):
            return {k: convert(v, selected or k in fields) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v, selected) for v in value]
        return _retype(value, style) if selected or not fields else value

    return json.dumps(convert(data, False), separators=(",", ":")).encode()


def missing_fields(body: bytes, fields: tuple[str, ...], count: int, rng: random.Random) -> bytes:
    """Drop the listed keys anywhere, or ``count`` randomly chosen leaf keys."""
    data = json.loads(body)
    if fields:
        _walk_keys(data, set(fields), lambda d, k: d.pop(k))
    else:
        leaves: list[tuple[dict[str, Any], str]] = []

        def collect(value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    if isinstance(v, (dict, list)) and v:
                        collect(v)
                    else:
                        leaves.append((value, k))
            elif isinstance(value, list):
                for item in value:
                    collect(item)

        collect(data)
        for d, k in rng.sample(leaves, min(count, len(leaves))):
            d.pop(k, None)
    return json.dumps(data, separators=(",", ":")).encode()


def big_body(body: bytes, size: int) -> bytes:
    """Valid JSON of at least ``size`` bytes shaped like the real answer (repeated list entries,
    or the real object with a huge padding string)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, list) and data:
        item = json.dumps(data[0], separators=(",", ":")).encode()
        n = size // (len(item) + 1) + 1
        return b"[" + b",".join([item] * n) + b"]"
    rest = body[1:] if isinstance(data, dict) and len(body) > 2 else b"}"
    head, tail = b'{"padding":"', (b'",' + rest) if rest != b"}" else b'"}'
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


def status_body(upstream: str, status: int, reason: str) -> tuple[bytes, str]:
    if upstream == "tessie":
        return json.dumps({"error": reason}).encode(), "application/json"
    if upstream == "fleet":
        code = reason.lower().replace(" ", "_")
        return json.dumps({"response": None, "error": code, "error_description": reason}).encode(), "application/json"
    if upstream == "comed":
        return f"<html><body><h1>{status} {reason}</h1></body></html>".encode(), "text/html"
    if upstream == "opower":
        code = reason.upper().replace(" ", "_")
        return json.dumps({"error": {"httpStatus": status, "serviceErrorCode": code}}).encode(), "application/json"
    return b"", "text/plain"


# --- application ----------------------------------------------------------------------------------


def reset_connection(request: web.Request) -> None:
    """Abort with a TCP RST (SO_LINGER 0): the client sees a reset, never a response."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


async def _hold(fault: ActiveFault, clock: Clock) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + fault.spec.hold_s if fault.spec.hold_s is not None else None
    while fault.holding(clock.now()) and (deadline is None or loop.time() < deadline):
        try:
            await asyncio.wait_for(fault.released.wait(), timeout=0.05)
        except TimeoutError:
            pass


async def apply_fault(fault: ActiveFault, upstream: str, request: web.Request, handler: Handler,
                      clock: Clock) -> web.StreamResponse:
    spec = fault.spec
    kind = spec.kind
    if kind == "hang":
        await _hold(fault, clock)
        if spec.then == "drop":
            reset_connection(request)
            raise asyncio.CancelledError
        return await handler(request)
    if kind == "slow":
        await asyncio.sleep(spec.delay_s)
        return await handler(request)
    if kind == "reset":
        reset_connection(request)
        raise asyncio.CancelledError
    if kind == "status":
        reason = web.Response(status=spec.status).reason
        body, ctype = (spec.body.encode(), "application/json" if upstream in ("tessie", "fleet", "opower")
                       else "text/html") \
            if spec.body is not None else status_body(upstream, spec.status, reason)
        headers = dict(spec.headers)
        if spec.retry_after is not None:
            headers["Retry-After"] = str(spec.retry_after)
        return web.Response(status=spec.status, body=body, content_type=ctype, headers=headers)
    if kind == "empty":
        return web.Response(body=b"[]", content_type="text/html", charset="utf-8")
    response = await handler(request)
    if not isinstance(response, web.Response) or response.body is None:
        return response
    body = bytes(response.body)  # type: ignore[arg-type]
    try:
        if kind == "malformed":
            body = malformed(body)
        elif kind == "truncated":
            body = truncated(body, spec.cut_bytes)
        elif kind == "nan":
            body = with_nan(body, spec.fields)
        elif kind == "wrong_types":
            body = wrong_types(body, spec.fields, spec.style)
        elif kind == "missing_fields":
            body = missing_fields(body, spec.fields, spec.random, random.Random(f"{fault.id}:{fault.hits}"))
        elif kind == "big_body":
            body = big_body(body, int(spec.size_mb * 1024 * 1024))
    except ValueError:
        pass  # the real answer was not JSON (e.g. an error text): serve it unchanged
    return web.Response(status=response.status, body=body, content_type=response.content_type,
                        charset=response.charset)


def fault_middleware(registry: FaultRegistry, clock: Clock,
                     classify: Callable[[web.Request], Where | None]) -> Any:
    """Middleware applying the first matching active fault to each classified request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        where = classify(request)
        if where is None:
            return await handler(request)
        upstream, charger, rel = where
        fault = registry.admit(upstream, charger, rel, clock.now())
        if fault is None:
            return await handler(request)
        log.info("fault %s %s on %s %s", fault.id, fault.spec.kind, upstream if charger is None
                 else f"{upstream}:{charger}", request.path_qs)
        return await apply_fault(fault, upstream, request, handler, clock)

    return middleware
