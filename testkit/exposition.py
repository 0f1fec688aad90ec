"""Reading /metrics text: one parser for the whole repository.

`parse` turns an exposition into {series: value}, the series written as it is exposed (name and
label set, e.g. `twc_up{target="garage"}`), so a test looks a series up by the very text an
operator would query. Label values may hold spaces and braces; sample timestamps are dropped.
`samples` gives the label-aware view (unescaped label values), for sums and lookups by label.
"""
from __future__ import annotations

from typing import Iterable, Mapping, NamedTuple

from prometheus_client.parser import text_string_to_metric_families


def parse(text: str) -> dict[str, float]:
    """series -> value of every sample line (text format or OpenMetrics)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        cut = line.rindex("}") + 1 if "}" in line else line.index(" ")
        found[line[:cut]] = float(line[cut:].split()[0])
    return found


def _series(found: str | Mapping[str, float]) -> Mapping[str, float]:
    return parse(found) if isinstance(found, str) else found


def value(found: str | Mapping[str, float], series: str) -> float | None:
    """The value of one series (exposition text or parsed), None when it is not exposed."""
    return _series(found).get(series)


def named(found: str | Mapping[str, float], name: str) -> dict[str, float]:
    """Every series of the metric `name`, whatever its labels."""
    return {series: v for series, v in _series(found).items() if series.split("{", 1)[0] == name}


def matching(found: str | Mapping[str, float], prefix: str) -> dict[str, float]:
    """Every series whose text starts with `prefix` (a name, or a name and the first labels)."""
    return {series: v for series, v in _series(found).items() if series.startswith(prefix)}


def has(found: str | Mapping[str, float], prefix: str) -> bool:
    return bool(matching(found, prefix))


class Sample(NamedTuple):
    name: str
    labels: dict[str, str]
    value: float


def samples(text: str) -> list[Sample]:
    """Every sample with its labels unescaped (prometheus_client's parser)."""
    return [Sample(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


def label_values(text: str, label: str) -> set[str]:
    """Every value `label` takes in the exposition."""
    return {s.labels[label] for s in samples(text) if label in s.labels}


def by_label(found: Iterable[Sample], name: str, label: str, **match: str) -> dict[str, float]:
    """label value -> value of the samples named `name` whose other labels include `match`."""
    return {s.labels[label]: s.value for s in found
            if s.name == name and label in s.labels and all(s.labels.get(k) == v for k, v in match.items())}
