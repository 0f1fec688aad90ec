"""The billed hourly prices a report needs, from Prometheus, best effort.

`electricity_price_billed_cents_per_kwh` has one sample per complete billing hour, stamped with the
hour's end, so a `query_range` stepping over hour ends returns each hour's price once (the 5-minute
lookback never reaches the hour before). A report waits a few seconds at most: without Prometheus it
is still made, and says which figures need the price history.
"""
from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from servicekit.promql import with_matcher

METRIC = "electricity_price_billed_cents_per_kwh"
HOUR_S = 3600.0
MARGIN_S = 86400.0       # paused plug-ins may begin a day before the period and charge past its end
UNREACHABLE = "needs price history (Prometheus unreachable)"


@dataclass(frozen=True)
class PriceHistory:
    prices: dict[float, float] | None     # hour end -> cents per kWh; None: unknown
    note: str | None                      # why it is unknown


def parse_matrix(body: object) -> dict[float, float]:
    """A query_range answer -> {hour end: cents}; several series (one per provider label set) averaged."""
    if not isinstance(body, dict) or body.get("status") != "success":
        raise ValueError(f"not a successful Prometheus answer: {str(body)[:120]}")
    sums: dict[float, list[float]] = {}
    for series in body["data"]["result"]:
        for t, value in series.get("values", []):
            number = float(value)
            if math.isfinite(number):
                sums.setdefault(float(t), []).append(number)
    return {t: sum(v) / len(v) for t, v in sorted(sums.items())}


def billed_prices(url: str, start: float, end: float, timeout: float = 4.0, matcher: str | None = None) -> PriceHistory:
    """Billed prices of the hours ending in [start - a day, end + a day] (of one site: `matcher`)."""
    first = math.floor((start - MARGIN_S) / HOUR_S) * HOUR_S
    last = math.ceil((end + MARGIN_S) / HOUR_S) * HOUR_S
    query = urllib.parse.urlencode({"query": with_matcher(f"avg({METRIC})", matcher) if matcher else f"avg({METRIC})", "start": f"{first:.0f}", "end": f"{last:.0f}",
                                    "step": f"{HOUR_S:.0f}"})
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/query_range?{query}", timeout=timeout) as answer:
            return PriceHistory(parse_matrix(json.load(answer)), None)
    except (OSError, ValueError, KeyError, TypeError) as error:   # URLError and timeouts are OSErrors
        detail = getattr(error, "reason", None) or error
        return PriceHistory(None, f"{UNREACHABLE}: {str(detail)[:100]}" if detail else UNREACHABLE)
