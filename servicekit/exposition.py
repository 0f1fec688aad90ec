"""The exposition, rendered once per poll (off the event loop) and served as bytes to every scrape.

Rendering 1,000 chargers (58,000 series, both formats) takes about 0.9 s on 2 cores; serving the
ready bytes takes under 1 ms (benchmarks/results.md); the exporters re-render only the targets that
changed (servicekit/incremental.py), byte-identical to a full render. The data only changes when a poll completes
or a snapshot turns stale, so those are the moments we render, and renders are spaced by at least
four times their own duration so that a large installation spends at most a fifth of a core on it.
"""
from __future__ import annotations

import asyncio
import gzip
import logging
import sys
import time
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Sequence

from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.core import Metric as Family
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

RENDER_DUTY_SPACING = 4.0   # wait 4x a render's duration before the next: at most ~20 % of a core
# A render in its worker thread holds the GIL; a scrape waiting for it waits up to one switch interval at each
# of its few GIL hand-overs (Python's default: 5 ms each). At 0.5 ms a scrape meeting a render stays within a
# few ms (benchmarks/results.md, "incremental rendering"); it only matters while two threads want the GIL.
GIL_SWITCH_INTERVAL = 0.0005

# `_created` series double every counter and histogram and nobody queries them.
disable_created_metrics()

# Our names are all legacy-valid, so the classic 0.0.4 text format is exact and every Prometheus reads it.
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Rendered:
    text: bytes
    text_gzip: bytes
    openmetrics: bytes
    openmetrics_gzip: bytes
    rendered_at: float

    def body(self, openmetrics: bool, gzipped: bool) -> tuple[bytes, str]:
        if openmetrics:
            return (self.openmetrics_gzip if gzipped else self.openmetrics), OPENMETRICS_TYPE
        return (self.text_gzip if gzipped else self.text), TEXT_TYPE


def share_gil_with_scrapes() -> None:
    """Make the render thread hand the GIL to the event loop after 0.5 ms instead of 5 ms (process-wide)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)


def render(registry: CollectorRegistry) -> Rendered:
    text = generate_latest(registry)
    openmetrics = generate_openmetrics(registry)
    return _rendered(text, openmetrics)


def _rendered(text: bytes, openmetrics: bytes) -> Rendered:
    return Rendered(text, gzip.compress(text, 6, mtime=0), openmetrics, gzip.compress(openmetrics, 6, mtime=0),
                    time.time())


OPENMETRICS_EOF = b"# EOF\n"


@dataclass(frozen=True)
class Part:
    """A piece of the exposition: its families, and a key that changes whenever they may have (None:
    they may change at any render, so it is always rendered)."""

    families: Callable[[], Iterable[Family]]
    key: Callable[[], Hashable] | None = None


class _Families:
    """The one method prometheus-client's generators ask of a registry."""

    def __init__(self, families: list[Family]) -> None:
        self.families = families

    def collect(self) -> list[Family]:
        return self.families


class PartsRenderer:
    """Renders each part only when its key changed and serves the concatenation, byte-identical to
    rendering all the parts' families at once: a render costs what changed, not what is stored (the
    session store's counters over every unit and vehicle pair re-render only when the ledger moves)."""

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts = parts
        self._cache: list[tuple[Hashable, bytes, bytes] | None] = [None] * len(parts)

    def __call__(self) -> Rendered:
        texts, openmetrics = [], []
        for index, part in enumerate(self.parts):
            key = part.key() if part.key is not None else None
            cached = self._cache[index]
            if cached is None or key is None or cached[0] != key:
                families = _Families(list(part.families()))
                cached = (key, generate_latest(families),
                          generate_openmetrics(families).removesuffix(OPENMETRICS_EOF))
                self._cache[index] = cached
            texts.append(cached[1])
            openmetrics.append(cached[2])
        return _rendered(b"".join(texts), b"".join(openmetrics) + OPENMETRICS_EOF)


def wants_openmetrics(accept: str) -> bool:
    """Prometheus asks for OpenMetrics first; plain text is the fallback for everyone else."""
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media == "application/openmetrics-text":
            return not any(p.replace(" ", "") == "q=0" for p in params)
    return False


def wants_gzip(accept_encoding: str) -> bool:
    return any(p.split(";")[0].strip().lower() == "gzip" and "q=0" not in p.replace(" ", "")
               for p in accept_encoding.split(","))


class Exposition:
    """Holds the current `Rendered`; `mark_dirty()` (called by pollers) schedules a re-render.

    It renders `registry`, or calls `renderer` when one is given (a `PartsRenderer`; the exporters'
    `servicekit.incremental.IncrementalRenderer`, which re-renders only the targets that changed)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, min_interval: float = 1.0,
                 valid_until: Callable[[float], float | None] = lambda now: None,
                 renderer: Callable[[], Rendered] | None = None) -> None:
        assert (registry is None) != (renderer is None), "a registry or a renderer"
        self.registry = registry
        self.renderer: Callable[[], Rendered] = renderer or (lambda: render(registry))
        self.min_interval = min_interval
        self.valid_until = valid_until
        self.current: Rendered | None = None
        self.renders = 0
        self.last_duration = 0.0
        self._dirty = asyncio.Event()

    def render_now(self) -> Rendered:
        """Synchronous first render at start-up, before the server answers its first scrape."""
        self.current = self.renderer()
        return self.current

    def mark_dirty(self) -> None:
        self._dirty.set()

    async def refresh(self) -> Rendered:
        """Render now in a worker thread, so the event loop keeps answering scrapes meanwhile."""
        started = time.monotonic()
        self.current = await asyncio.get_running_loop().run_in_executor(None, self.renderer)
        self.last_duration = time.monotonic() - started
        self.renders += 1
        return self.current

    async def run(self) -> None:
        """Re-render after polls (at most once per `min_interval`) and when data turns stale."""
        while True:
            expiry = self.valid_until(time.time())
            timeout = None if expiry is None else max(0.0, expiry - time.time()) + 0.01
            try:
                await asyncio.wait_for(self._dirty.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            self._dirty.clear()
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - a failed render keeps the last one served; the next poll retries
                logging.getLogger(__name__).warning("render failed; serving the previous one", exc_info=True)
            await asyncio.sleep(max(self.min_interval, RENDER_DUTY_SPACING * self.last_duration))
