"""Helpers for tests that run real processes: Prometheus queries, port files, scrapes."""
from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.processes import ManagedProcess, wait_until


def get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def get_json(url: str, timeout: float = 5.0) -> Any:
    return json.loads(get(url, timeout)[2])


def schema_of(path: str) -> dict:
    """The JSON schema of a GET endpoint's 200 answer in the session store's OpenAPI description."""
    from session_store.openapi import OPENAPI
    return OPENAPI["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]


@dataclass
class RunningPrometheus:
    url: str
    process: ManagedProcess
    data_dir: Path

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        body = get_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}")
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll an instant query until it returns at least one series."""
        found: list[dict[str, Any]] = []

        def check() -> bool:
            found[:] = self.query(expr)
            return bool(found)
        wait_until(check, timeout, 0.2, f"PromQL {expr!r} to return data")
        return found

    def targets(self) -> list[dict[str, Any]]:
        return get_json(f"{self.url}/api/v1/targets")["data"]["activeTargets"]


def read_port_file(path: Path, timeout: float = 20.0) -> dict[str, Any]:
    wait_until(lambda: path.exists() and path.stat().st_size > 0, timeout, 0.05, f"port file {path}")
    return json.loads(path.read_text())


def timed_get(url: str, timeout: float = 5.0) -> tuple[float, int, bytes]:
    started = time.monotonic()
    status, _, body = get(url, timeout)
    return time.monotonic() - started, status, body


class Receiver:
    """A local HTTP endpoint that records every JSON body POSTed to it (Alertmanager's webhooks)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[tuple[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, json.loads(body or b"null")))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self, path: str) -> list[Any]:
        return [body for p, body in list(self.received) if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
