"""Plain HTTP for tests and benchmarks: every answer as (status, headers, body), error statuses included.

Blocking urllib on purpose: it needs no event loop, so the same call works in a sync test, a
`wait_until` probe and a benchmark's measuring loop.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Mapping

Answer = tuple[int, dict[str, str], bytes]


class UnexpectedStatus(AssertionError):
    """A request that had to succeed did not; the message names the URL, status and body."""


def _open(request: urllib.request.Request, timeout: float) -> Answer:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def get(url: str, timeout: float = 5.0, headers: Mapping[str, str] | None = None) -> Answer:
    return _open(urllib.request.Request(url, headers=dict(headers or {})), timeout)


def get_json(url: str, timeout: float = 5.0) -> Any:
    return json.loads(get(url, timeout)[2])


def timed_get(url: str, timeout: float = 5.0) -> tuple[float, int, bytes]:
    """(seconds, status, body) of one GET, timed from the request to the last byte."""
    started = time.monotonic()
    status, _, body = get(url, timeout)
    return time.monotonic() - started, status, body


def call(url: str, body: Any = None, method: str = "POST", headers: Mapping[str, str] | None = None,
         data: bytes | None = None, timeout: float = 10) -> Answer:
    """Any request: `body` is sent as JSON (or `data` as it is)."""
    payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=payload, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    return _open(request, timeout)


def call_json(url: str, body: Any = None, method: str = "POST", timeout: float = 10) -> Any:
    """A request that must succeed (2xx); its JSON answer (None for an empty body)."""
    status, _, data = call(url, body, method, timeout=timeout)
    if not 200 <= status < 300:
        raise UnexpectedStatus(f"{method} {url}: {status} {data[:200]!r}")
    return json.loads(data or b"null")


def post_json(url: str, body: Any, timeout: float = 10) -> Any:
    return call_json(url, body, "POST", timeout)
