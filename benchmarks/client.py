"""The scraping client, run as its own process (`python -m benchmarks.client ...`).

A client thread inside the server's process would share its GIL and CPU and flatter or distort
both servers alike; Prometheus is another process, so the client is too. It scrapes the way
Prometheus 2.42 does: keep-alive HTTP/1.1, its request headers, the whole body read before the
clock stops. Decompressing and checking the body happen after the clock stops (Prometheus parses
after the transfer too, and that cost is the scraper's, not the exporter's).

    burst: N scrapes back to back (or every --interval s), one JSON object on stdout.
    watch: scrape every --interval s until SIGTERM or --duration, one JSON line per scrape on stdout,
           with the value of one sample (e.g. twc_up{target="garage"}) read from each body.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import json
import signal
import sys
import time
from typing import Any, Sequence
from urllib.parse import urlsplit

from testkit.exposition import value

# What the installed Prometheus 2.42.0+ds (Debian) sends with every scrape, as captured from a real scrape;
# only X-Prometheus-Scrape-Timeout-Seconds follows the scrape config (10 s is Prometheus' default).
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.42.0+ds",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
# A plain client (curl, a browser): no OpenMetrics, no compression.
PLAIN_HEADERS = {"Accept": "text/plain", "Accept-Encoding": "identity", "User-Agent": "benchmarks/plain"}
HEADERS = {"prometheus": PROMETHEUS_HEADERS, "plain": PLAIN_HEADERS}


class CountingConnection(http.client.HTTPConnection):
    """Counts TCP connects, to show which server keeps the connection alive and which closes it."""

    connects = 0

    def connect(self) -> None:
        CountingConnection.connects += 1
        super().connect()


class Scraper:
    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        parts = urlsplit(url)
        self.path = parts.path or "/"
        self.headers = headers
        self.connection = CountingConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)

    def scrape(self) -> tuple[float, int, dict[str, str], bytes]:
        """One scrape: (seconds from request to the last body byte, status, headers, raw body)."""
        start = time.perf_counter()
        try:
            self.connection.request("GET", self.path, headers=self.headers)
            response = self.connection.getresponse()
            body = response.read()
        except (ConnectionError, http.client.BadStatusLine):
            self.connection.close()  # the server closed an idle keep-alive connection: reconnect once
            start = time.perf_counter()
            self.connection.request("GET", self.path, headers=self.headers)
            response = self.connection.getresponse()
            body = response.read()
        elapsed = time.perf_counter() - start
        return elapsed, response.status, {k.lower(): v for k, v in response.getheaders()}, body


def decoded(headers: dict[str, str], body: bytes) -> bytes:
    return gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body


def burst(url: str, mode: str, count: int, warmup: int, interval: float, timeout: float) -> dict[str, Any]:
    scraper = Scraper(url, HEADERS[mode], timeout)
    for _ in range(warmup):
        scraper.scrape()
    CountingConnection.connects = 0
    latencies, statuses = [], set()
    first: tuple[dict[str, str], bytes] | None = None
    next_at = time.perf_counter()
    for _ in range(count):
        if interval:
            next_at += interval
            time.sleep(max(0.0, next_at - time.perf_counter()))
        elapsed, status, headers, body = scraper.scrape()
        latencies.append(elapsed * 1000.0)
        statuses.add(status)
        first = first or (headers, body)
    assert first is not None
    headers, body = first
    text = decoded(headers, body)
    return {"mode": mode, "latencies_ms": latencies, "statuses": sorted(statuses), "wire_bytes": len(body),
            "decoded_bytes": len(text), "sha256": hashlib.sha256(text).hexdigest(),
            "samples": sum(1 for line in text.splitlines() if line and not line.startswith(b"#")),
            "content_type": headers.get("content-type", ""), "content_encoding": headers.get("content-encoding", ""),
            "connects": CountingConnection.connects}


def watch(url: str, mode: str, interval: float, duration: float, sample: str, timeout: float) -> None:
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    scraper = Scraper(url, HEADERS[mode], timeout)
    deadline = time.monotonic() + duration
    next_at = time.monotonic()
    while not stop and time.monotonic() < deadline:
        started = time.time()
        row: dict[str, Any] = {"t": started}
        try:
            elapsed, status, headers, body = scraper.scrape()
            row.update(ms=elapsed * 1000.0, status=status, value=value(decoded(headers, body).decode(), sample))
        except (OSError, http.client.HTTPException) as error:
            row.update(ms=(time.time() - started) * 1000.0, status=0, error=f"{type(error).__name__}: {error}")
            scraper.connection.close()
        print(json.dumps(row), flush=True)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.client", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("burst", help="N scrapes, one JSON summary")
    one.add_argument("--count", type=int, default=200)
    one.add_argument("--warmup", type=int, default=5)
    one.add_argument("--interval", type=float, default=0.0, help="seconds between scrape starts; 0 = back to back")
    many = sub.add_parser("watch", help="scrape until SIGTERM, one JSON line per scrape")
    many.add_argument("--interval", type=float, default=0.05)
    many.add_argument("--duration", type=float, default=300.0, help="stop by itself after this many seconds")
    many.add_argument("--sample", required=True, help='sample to read from each body, e.g. twc_up{target="garage"}')
    for command in (one, many):
        command.add_argument("--url", required=True)
        command.add_argument("--mode", choices=sorted(HEADERS), default="prometheus")
        command.add_argument("--timeout", type=float, default=10.0, help="Prometheus' default scrape timeout")
    args = parser.parse_args(argv)
    if args.command == "burst":
        print(json.dumps(burst(args.url, args.mode, args.count, args.warmup, args.interval, args.timeout)))
    else:
        watch(args.url, args.mode, args.interval, args.duration, args.sample, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
