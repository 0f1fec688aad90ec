"""Metric definitions as a table: one `Metric` row per family, one loop turns rows + records into families.

A row's `value` extracts from a record: a number (None = field absent, no sample, never a fake 0),
a mapping {label value(s): number} for rows with extra labels, a mapping of labels for `_info`
rows, or a code for enumerations, which yield both `<name>_code` and the `<name>{state=...}` set.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric as Family

GAUGE, COUNTER, INFO, ENUM = "gauge", "counter", "info", "enum"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    help: str
    value: Callable[[Any], Any]
    extra_labels: tuple[str, ...] = ()
    states: Mapping[int, str] = field(default_factory=dict)
    unit: str = ""

    @property
    def code_help(self) -> str:
        """An enumeration's `_code` HELP: what each code means, in the exposition as in the docs."""
        codes = ", ".join(f"{code}={state}" for code, state in self.states.items())
        return f"{self.help} Numeric code: {codes}; others exported as is."

    @property
    def state_help(self) -> str:
        return f"{self.help} 1 for the current state, 0 for the others; `unknown` for unmapped codes."

    def reference(self, base_labels: Sequence[str]) -> list[tuple[str, str, str, str]]:
        """(name, type, labels, help) rows for the metric reference (docs/metrics.md)."""
        labels = ", ".join((*base_labels, *self.extra_labels))
        if self.kind == ENUM:
            return [(f"{self.name}_code", "gauge", labels, self.code_help),
                    (self.name, "gauge (state set)", ", ".join((*base_labels, "state")), self.state_help)]
        if self.kind == COUNTER:
            return [(f"{self.name}_total", "counter", labels, self.help)]
        if self.kind == INFO:
            return [(f"{self.name}_info", "gauge (info)", labels + ", ...facts", self.help)]
        return [(self.name, "gauge", labels, self.help)]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def build_families(rows: Iterable[Metric], base_labels: Sequence[str],
                   records: Sequence[tuple[Sequence[str], Any]]) -> list[Family]:
    """Families for every row over every (base label values, record); rows with no samples still appear."""
    families: list[Family] = []
    for row in rows:
        labels = [*base_labels, *row.extra_labels]
        if row.kind == ENUM:
            code_family = GaugeMetricFamily(f"{row.name}_code", row.code_help, labels=labels)
            state_family = GaugeMetricFamily(row.name, row.state_help, labels=[*labels, "state"])
            for label_values, record in records:
                code = _number(row.value(record))
                if code is None:
                    continue
                code_family.add_metric(list(label_values), code)
                current = row.states.get(int(code), "unknown")
                for state in (*dict.fromkeys(row.states.values()), "unknown"):
                    state_family.add_metric([*label_values, state], 1.0 if state == current else 0.0)
            families += [code_family, state_family]
            continue
        if row.kind == INFO:
            info = InfoMetricFamily(row.name, row.help, labels=labels)
            for label_values, record in records:
                facts = row.value(record)
                if facts:
                    info.add_metric(list(label_values), {k: str(v) for k, v in facts.items() if v is not None})
            families.append(info)
            continue
        family = (CounterMetricFamily if row.kind == COUNTER else GaugeMetricFamily)(row.name, row.help, labels=labels)
        for label_values, record in records:
            extracted = row.value(record)
            if row.extra_labels:
                for extra, value in (extracted or {}).items():
                    number = _number(value)
                    if number is not None:
                        extra = extra if isinstance(extra, tuple) else (extra,)
                        family.add_metric([*label_values, *extra], number)
            else:
                number = _number(extracted)
                if number is not None:
                    family.add_metric(list(label_values), number)
        families.append(family)
    return families
