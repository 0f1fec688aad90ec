"""History (samples at their real time, days late) into VictoriaMetrics through its import API.

The price backfill and charging-meter write OpenMetrics text. Prometheus takes it as TSDB blocks
(promtool, `exporters.price_backfill.create_blocks`); VictoriaMetrics, single node or cluster, takes
the same samples at `/api/v1/import/prometheus` while it runs. That endpoint reads the Prometheus text
format, whose timestamps are milliseconds where OpenMetrics has seconds: `import_text` converts.

VictoriaMetrics resets its query cache by itself when samples older than
`-search.cacheTimestampOffset` (5 minutes) arrive, so imported history is visible to the next query.
"""
from __future__ import annotations

import urllib.error
import urllib.request

IMPORT_PATH = "/api/v1/import/prometheus"


class ImportFailed(RuntimeError):
    """The import API refused or did not answer; the message says which URL and why (never a body)."""


def import_text(openmetrics: str) -> tuple[str, int]:
    """OpenMetrics text (timestamps in seconds, fractions allowed) as Prometheus text with millisecond
    timestamps, and the number of samples. Comments and `# EOF` are dropped; a sample without a
    timestamp is refused, since history without one would land at the time of the import."""
    lines, count = [], 0
    for line in openmetrics.splitlines():
        if not line or line.startswith("#"):
            continue
        cut = line.rfind("}") + 1                     # the end of the labels (0: none)
        series = line[:cut] if cut else line.split(" ", 1)[0]
        rest = line[len(series):].split()
        if len(rest) != 2:
            raise ValueError(f"not a sample with a timestamp: {line[:80]!r}")
        lines.append(f"{series} {rest[0]} {round(float(rest[1]) * 1000)}")
        count += 1
    return ("\n".join(lines) + "\n" if lines else ""), count


def endpoint(base_url: str) -> str:
    """The import URL under a base: VictoriaMetrics's own URL, or vminsert's .../insert/<tenant>/prometheus."""
    base = base_url.rstrip("/")
    return base if base.endswith(IMPORT_PATH) else base + IMPORT_PATH


def post(base_url: str, openmetrics: str, timeout: float = 120.0) -> int:
    """Import the samples of `openmetrics`; returns how many. Raises ImportFailed on any failure, so the
    caller keeps what it staged and tries again later."""
    text, count = import_text(openmetrics)
    if not count:
        return 0
    url = endpoint(base_url)
    request = urllib.request.Request(url, data=text.encode(), method="POST",
                                     headers={"Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status >= 300:
                raise ImportFailed(f"{url} answered HTTP {response.status}")
    except urllib.error.HTTPError as error:
        raise ImportFailed(f"{url} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ImportFailed(f"{url} unreachable ({reason})") from None
    return count
