"""The collector every exporter shares: health for each target, data only from fresh snapshots.

    twc_up{target="garage"} 1
    twc_last_success_timestamp_seconds{target="garage"} 1.764e+09
    twc_power_watts{charger="garage"} 11520.0      <- from the exporter's own `families`
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric as Family

from servicekit.poller import Poller


@dataclass
class Target:
    """Something the exporter watches (a charger, a site, a vehicle), polled on one or more endpoints."""

    name: str
    pollers: dict[str, Poller[Any]] = field(default_factory=dict)
    primary: str = ""

    def add(self, poller: Poller[Any]) -> Poller[Any]:
        self.pollers[poller.endpoint] = poller
        self.primary = self.primary or poller.endpoint
        return poller


FreshData = Mapping[str, Mapping[str, Any]]  # target name -> endpoint -> latest value still fresh

UP_HELP = "1 if the last poll of the target succeeded and its data is fresh, else 0."
LAST_SUCCESS_HELP = "When the target was last polled successfully (Unix time)."


def health_reference(prefix: str) -> list[tuple[str, str, str, str]]:
    """(name, type, labels, help) of the health gauges every exporter's collector yields."""
    return [(f"{prefix}_up", "gauge", "target", UP_HELP),
            (f"{prefix}_last_success_timestamp_seconds", "gauge", "target", LAST_SUCCESS_HELP)]


def no_version() -> Hashable:
    return None


class SnapshotCollector:
    """Reads each poller's latest snapshot once per render; withdraws what is older than `stale_after`.

    `families(data)` must give each target's samples from that target's data alone (plus whatever
    `version()` covers), in an order of families that does not depend on which targets are in `data`:
    `servicekit.incremental` relies on it to re-render only the targets whose key changed.
    `version()` names everything else `families` reads that can change at run time (names learned
    from an upstream, a label discovered later): when it changes, every target is rendered again."""

    def __init__(self, prefix: str, targets: list[Target], stale_after: float,
                 families: Callable[[FreshData], Iterable[Family]], clock: Callable[[], float] = time.time,
                 version: Callable[[], Hashable] = no_version) -> None:
        self.prefix = prefix
        self.targets = targets  # the live list: targets discovered later appear in the next render
        self.stale_after = stale_after
        self.families = families
        self.clock = clock
        self.version = version

    def limit(self, poller: Poller[Any]) -> float:
        """A snapshot is stale after `stale_after`, but never before two of its own poll intervals."""
        return max(self.stale_after, 2 * poller.interval)

    def fresh(self, now: float) -> dict[str, dict[str, Any]]:
        data: dict[str, dict[str, Any]] = {}
        for target in self.targets:
            values = {}
            for endpoint, poller in target.pollers.items():
                snapshot = poller.latest
                if snapshot is not None and now - snapshot.taken_at <= self.limit(poller):
                    values[endpoint] = snapshot.value
            data[target.name] = values
        return data

    def valid_until(self, now: float) -> float | None:
        """When the next fresh snapshot turns stale, so the exposition is re-rendered then."""
        moments = [p.latest.taken_at + self.limit(p) for t in self.targets for p in t.pollers.values()
                   if p.latest is not None and p.latest.taken_at + self.limit(p) >= now]
        return min(moments) if moments else None

    def collect(self) -> Iterable[Family]:
        now = self.clock()
        return self.collect_targets(self.fresh(now), self.targets)

    def collect_targets(self, data: FreshData, targets: Sequence[Target]) -> Iterable[Family]:
        """Health and data families of `targets` only (all of them: `collect`; one at a time: the
        incremental renderer), from `data` as `fresh` made it."""
        up = GaugeMetricFamily(f"{self.prefix}_up", UP_HELP, labels=["target"])
        last = GaugeMetricFamily(f"{self.prefix}_last_success_timestamp_seconds", LAST_SUCCESS_HELP, labels=["target"])
        for target in targets:
            primary = target.pollers.get(target.primary)
            healthy = bool(primary and primary.health.up and target.primary in data[target.name])
            up.add_metric([target.name], 1.0 if healthy else 0.0)
            if primary and primary.health.last_success is not None:
                last.add_metric([target.name], primary.health.last_success)
        yield up
        yield last
        yield from self.families({target.name: data[target.name] for target in targets})

    def describe(self) -> Iterable[Family]:
        return []
