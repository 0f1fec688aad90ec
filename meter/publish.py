"""Meter data into Prometheus at its real time: the outbox of `Storage.stage_publication` written as
TSDB blocks by `promtool tsdb create-blocks-from openmetrics` (the path the price backfill takes).

Why blocks and not the scrape: a scrape carries one sample per series, stamped now, while a pull brings
days of half-hour reads 24-48 hours late. Prometheus picks new blocks up at its next compaction cycle
(about a minute) and merges them with what it has; the samples of a series never share a timestamp (see
`session_store.meter_storage`), so merging never has to choose.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from exporters.price_backfill import create_blocks
from session_store.meter_records import StoredRead
from meter.reconcile import ReadShare

J_PER_KWH = 3.6e6
LABELS = 'utility="{utility}"'
SERIES_HELP = {
    "utility_meter_read_energy_joules": "Energy of each meter read (the home), a millisecond before the read's end; "
                                        "corrections add the difference a millisecond earlier: sum_over_time gives the total.",
    "utility_meter_read_cost_dollars": "The utility's cost of each meter read (increments, as the energy).",
    "utility_meter_read_ev_energy_joules": "EV charging energy (our sessions) inside each meter read.",
    "utility_meter_read_ev_cost_dollars": "Cost of the EV energy inside each read: source=utility (the read's cost "
                                          "times the EV share), source=computed (our tariff).",
}


def wanted(reads: Sequence[StoredRead], shares: Mapping[float, ReadShare], utility: str
           ) -> dict[str, dict[float, tuple[float, float]]]:
    """Series (name and labels) -> read start -> (read end, value) as Prometheus should sum it now."""
    base = LABELS.format(utility=utility)
    out: dict[str, dict[float, tuple[float, float]]] = {}

    def put(name: str, labels: str, start: float, end: float, value: float | None) -> None:
        if value is not None and math.isfinite(value):
            out.setdefault(f"{name}{{{labels}}}", {})[start] = (end, value)

    for read in reads:
        put("utility_meter_read_energy_joules", base, read.start, read.end, read.kwh * J_PER_KWH)
        put("utility_meter_read_cost_dollars", base, read.start, read.end, read.cost)
        share = shares.get(read.start)
        if share is not None:
            put("utility_meter_read_ev_energy_joules", base, read.start, read.end, share.ev_kwh * J_PER_KWH)
            put("utility_meter_read_ev_cost_dollars", f'{base},source="utility"', read.start, read.end,
                share.ev_cost_utility)
            put("utility_meter_read_ev_cost_dollars", f'{base},source="computed"', read.start, read.end,
                share.ev_cost_computed)
    return out


def openmetrics(rows: Sequence[tuple[int, str, int, float]]) -> str:
    """Outbox rows (id, series, t_ms, value) as OpenMetrics: families together, each series in time order."""
    by_series: dict[str, list[tuple[int, float]]] = {}
    for _, series, t_ms, value in rows:
        by_series.setdefault(series, []).append((t_ms, value))
    lines: list[str] = []
    for name in sorted({series.split("{", 1)[0] for series in by_series}):
        lines += [f"# HELP {name} {SERIES_HELP.get(name, name)}", f"# TYPE {name} gauge"]
        for series in sorted(s for s in by_series if s.split("{", 1)[0] == name):
            samples: dict[int, float] = {}
            for t_ms, value in by_series[series]:
                samples[t_ms] = samples.get(t_ms, 0.0) + value   # never two samples at one timestamp
            lines += [f"{series} {value!r} {t_ms // 1000}.{t_ms % 1000:03d}" for t_ms, value in sorted(samples.items())]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def write_blocks(rows: Sequence[tuple[int, str, int, float]], data_dir: Path) -> list[str]:
    """Write the rows as blocks into the TSDB directory; returns the new block names."""
    if not rows:
        return []
    span_h = (max(r[2] for r in rows) - min(r[2] for r in rows)) / 3.6e6
    duration = f"{max(24, math.ceil(span_h / 24 + 1) * 24)}h"
    # group-writable: under Compose, Prometheus (another user of the directory's group) compacts them
    return create_blocks(openmetrics(rows), data_dir, duration, umask=0o002)
