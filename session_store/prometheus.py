"""PromQL over HTTP: raw samples for integration, instant vectors for everything else.

Raw samples come from an instant query of a range selector (`power[3600s]` at the window's end),
which returns every stored sample with its own timestamp. `query_range` would resample at its step
and carry stale values forward across gaps, which biases energy (see DESIGN section 5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from servicekit.errors import BadPayload
from servicekit.promql import with_matcher, without_site
from servicekit.upstream import Upstream

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    t: list[float]
    v: list[float]


def _check(body: Any, what: str) -> Any:
    if not isinstance(body, dict) or body.get("status") != "success" or "data" not in body:
        raise BadPayload(f"prometheus {what}: {str(body)[:200]}")
    return body["data"]


class Prometheus:
    """`matcher` (Config.site_matcher) is added to every selector of every query: with several sites in one
    Prometheus, a session store sees its own site's series only."""

    def __init__(self, upstream: Upstream, url: str, matcher: str | None = None) -> None:
        self.upstream = upstream
        self.url = url.rstrip("/")
        self.host = urlsplit(self.url).netloc
        self.matcher = matcher

    async def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        if self.matcher:
            expr = with_matcher(expr, self.matcher, skip=without_site)
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = await self.upstream.fetch_json("query", f"{self.url}/api/v1/query", params=params,
                                              parse=lambda body: _check(body, "query"))
        return data.get("result") or []

    async def samples(self, selector: str, start: float, end: float) -> list[Series]:
        """Every stored sample of `selector` with start < t <= end."""
        seconds = max(1, math.ceil(end - start))
        result = await self.query(f"{selector}[{seconds}s]", at=end)
        series = []
        for item in result:
            values = [(float(t), float(v)) for t, v in item.get("values", []) if start < float(t) <= end]
            if values:
                t, v = zip(*values)
                series.append(Series(item.get("metric", {}), list(t), list(v)))
        return series


def first_value(result: list[dict[str, Any]]) -> float | None:
    """The value of an instant query's first series (None when it has none, or NaN)."""
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else value
