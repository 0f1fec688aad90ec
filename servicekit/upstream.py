"""HTTP towards an upstream: status codes mapped to typed errors, bodies capped, every request counted.

Only clients use this. It never logs (the poller logs once per failure episode) and its error
messages carry the endpoint and host, never headers or query strings, so tokens cannot leak.
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import time
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram

from servicekit.errors import (
    OUTCOMES, AuthFailed, BadPayload, ClientError, RateLimited, ServerError, Timeout, Unavailable,
    Unreachable, UpstreamError,
)

DEFAULT_MAX_BODY = 8 * 1024 * 1024
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class UpstreamMetrics:
    """`<prefix>_upstream_requests_total{endpoint,outcome}` and the request-duration histogram."""

    def __init__(self, prefix: str, registry: CollectorRegistry, endpoints: Iterable[str] = (),
                 upstream: str = "the upstream API") -> None:
        (_, _, _, requests), (_, _, _, duration) = self.reference(prefix, upstream)
        self.requests = Counter(f"{prefix}_upstream_requests", requests, ["endpoint", "outcome"], registry=registry)
        self.duration = Histogram(f"{prefix}_upstream_request_duration_seconds", duration, ["endpoint"],
                                  buckets=DURATION_BUCKETS, registry=registry)
        for endpoint in endpoints:
            self.declare(endpoint)

    @staticmethod
    def reference(prefix: str, upstream: str = "the upstream API") -> list[tuple[str, str, str, str]]:
        """(name, type, labels, help) of both families: the one text /metrics and the docs share."""
        return [(f"{prefix}_upstream_requests_total", "counter", "endpoint, outcome",
                 f"Requests to {upstream} by endpoint and outcome ({', '.join(OUTCOMES)})."),
                (f"{prefix}_upstream_request_duration_seconds", "histogram", "endpoint",
                 f"Duration of requests to {upstream}, including failed ones.")]

    def declare(self, endpoint: str) -> None:
        """Create every outcome at 0 so rate() and increase() work from the first failure on."""
        for outcome in OUTCOMES:
            self.requests.labels(endpoint, outcome)
        self.duration.labels(endpoint)

    def observe(self, endpoint: str, outcome: str, seconds: float) -> None:
        self.requests.labels(endpoint, outcome).inc()
        self.duration.labels(endpoint).observe(seconds)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (now if now is not None else time.time()))


def error_for_status(status: int, where: str, headers: Mapping[str, str]) -> UpstreamError:
    retry = retry_after_seconds(headers.get("Retry-After"))
    if status in (401, 403):
        return AuthFailed(f"{where}: HTTP {status}, credentials rejected")
    if status == 408:
        return Unavailable(f"{where}: HTTP 408, device unavailable (asleep or offline)", retry)
    if status == 429:
        return RateLimited(f"{where}: HTTP 429, rate limited", retry)
    if status >= 500:
        return ServerError(f"{where}: HTTP {status}", retry)
    return ClientError(f"{where}: HTTP {status}")


class Upstream:
    """One upstream API reached through a shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, metrics: UpstreamMetrics, *, timeout: float,
                 headers: Mapping[str, str] | None = None, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.session = session
        self.metrics = metrics
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.headers = dict(headers or {})
        self.max_body = max_body

    async def fetch(self, endpoint: str, url: str, *, method: str = "GET",
                    params: Mapping[str, str] | None = None) -> bytes:
        """The body of a 2xx answer, or a typed `UpstreamError`; counted either way."""
        return await self._request(endpoint, url, method, params, lambda body, _: body)

    async def fetch_json(self, endpoint: str, url: str, *, method: str = "GET",
                         params: Mapping[str, str] | None = None,
                         decode: Callable[[bytes, str], Any] | None = None,
                         parse: Callable[[Any], Any] | None = None) -> Any:
        """Fetch, decode JSON whatever the content type (ComEd answers JSON as text/html) and `parse` it.

        Parsing happens inside the counted request, so JSON of the wrong shape counts as bad_payload.
        """
        decode = decode or decode_json

        def decode_and_parse(body: bytes, where: str) -> Any:
            data = decode(body, where)
            return parse(data) if parse else data
        return await self._request(endpoint, url, method, params, decode_and_parse)

    async def fetch_text(self, endpoint: str, url: str, *, method: str = "GET",
                         params: Mapping[str, str] | None = None, encoding: str = "utf-8",
                         parse: Callable[[str], Any] | None = None) -> Any:
        """Fetch a text body (ComEd's ServletFeed answers JavaScript-like text, not JSON) and `parse` it.

        As with `fetch_json`, decoding and parsing happen inside the counted request, so a body that is not
        text in `encoding`, or text of the wrong shape, counts as bad_payload.
        """
        def decode_and_parse(body: bytes, where: str) -> Any:
            text = decode_text(body, where, encoding)
            return parse(text) if parse else text
        return await self._request(endpoint, url, method, params, decode_and_parse)

    async def _request(self, endpoint: str, url: str, method: str, params: Mapping[str, str] | None,
                       decode: Callable[[bytes, str], Any]) -> Any:
        """One request, counted once with exactly one outcome (a body that fails to decode is bad_payload)."""
        where = f"{endpoint} at {urlsplit(url).netloc}"
        started = time.monotonic()
        outcome = "success"
        try:
            async with self.session.request(method, url, params=params, headers=self.headers,
                                            timeout=self.timeout, allow_redirects=False) as response:
                if not 200 <= response.status < 300:
                    raise error_for_status(response.status, where, response.headers)
                body = await self._read_capped(response, where)
            return decode(body, where)
        except UpstreamError as error:
            outcome = error.outcome
            raise
        except asyncio.TimeoutError:
            outcome = "timeout"
            raise Timeout(f"{where}: no answer within {self.timeout.total:g}s") from None
        except aiohttp.ClientPayloadError as error:
            outcome = "bad_payload"
            raise BadPayload(f"{where}: body cut off ({type(error).__name__})") from None
        except (aiohttp.ClientError, OSError) as error:
            outcome = "unreachable"
            raise Unreachable(f"{where}: {type(error).__name__}: {_short(error)}") from None
        finally:
            self.metrics.observe(endpoint, outcome, time.monotonic() - started)

    async def _read_capped(self, response: aiohttp.ClientResponse, where: str) -> bytes:
        length = response.content_length
        if length is not None and length > self.max_body:
            raise BadPayload(f"{where}: body of {length} bytes exceeds the {self.max_body} byte limit")
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(65536):
            size += len(chunk)
            if size > self.max_body:
                raise BadPayload(f"{where}: body exceeds the {self.max_body} byte limit")
            chunks.append(chunk)
        return b"".join(chunks)


def decode_json(body: bytes, endpoint: str) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadPayload(f"{endpoint}: invalid JSON ({_short(error)})") from None


def decode_text(body: bytes, endpoint: str, encoding: str = "utf-8") -> str:
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as error:
        raise BadPayload(f"{endpoint}: not {encoding} text ({_short(error)})") from None


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."
