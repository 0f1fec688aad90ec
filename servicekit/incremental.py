"""Incremental rendering: each target's lines are rendered again only when that target changed.

A full render of 1,000 Wall Connectors (58,000 series, both formats) costs about 0.9 s, yet a poll
changes one charger. The exposition format wants each family's samples together under one
HELP/TYPE, so targets cannot simply be concatenated: we cache, per target, the sample lines it
contributes to each family (rendered by prometheus-client, text 0.0.4 and OpenMetrics, so no float
is formatted here), and assemble per family: its header, then every target's cached lines in
target order. That is exactly what rendering all targets at once prints (tests/unit/
test_incremental.py compares both, byte for byte, over every exporter's families).

A target is rendered again when its key changes: the identity and time of each poller's latest
snapshot, whether each is still fresh (staleness withdraws data), its primary poller's health
(`<prefix>_up`, `_last_success_timestamp_seconds`) and the collector's `version()` (names learned
at run time). Collectors that are not per target (a sample without any target, as the price
exporter's tariff figures) are rendered whole, only when some key changed. Every other collector
of the registry (the upstream request counters and histograms, small and changed by every request)
is rendered on every call.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Hashable, Iterable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric as Family
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from servicekit.collector import SnapshotCollector, Target
from servicekit.exposition import OPENMETRICS_EOF, Rendered, _Families, _rendered, render

HELP = b"# HELP "
log = logging.getLogger(__name__)


class TrackingRegistry(CollectorRegistry):
    """A registry that remembers its collectors in registration order (the order generators print
    them in), so a renderer can treat each one its own way."""

    def __init__(self) -> None:
        super().__init__()
        self.collectors: list[Any] = []

    def register(self, collector: Any) -> None:
        super().register(collector)
        self.collectors.append(collector)

    def unregister(self, collector: Any) -> None:
        super().unregister(collector)
        self.collectors.remove(collector)


def blocks(rendered: bytes) -> list[tuple[bytes, bytes]]:
    """(header, sample lines) of each family in a rendered exposition (text or OpenMetrics without
    `# EOF`). A family starts at a `# HELP` line; its header is the comment lines that follow (TYPE,
    UNIT). Label values and HELP texts cannot hold a raw newline (they are escaped), so a line
    starting with `# HELP ` is always a family's start. prometheus-client's text format may print
    `_created`/`_gsum`/`_gcount` as families of their own after their family: they become blocks of
    their own, merged by header like any other."""
    if not rendered:
        return []
    assert rendered.startswith(HELP), "an exposition starts with a family's HELP"
    out = []
    pieces = rendered[len(HELP):].split(b"\n" + HELP)
    for index, piece in enumerate(pieces):
        block = HELP + piece + (b"\n" if index < len(pieces) - 1 else b"")
        end = 0
        while block.startswith(b"#", end):
            end = block.index(b"\n", end) + 1
        out.append((block[:end], block[end:]))
    return out


class _Same:
    """Equal only to the very same object, which it keeps alive (so its id cannot be reused meanwhile):
    snapshots are compared by identity, never by their (large) values."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


Ident = tuple[bytes, int]   # a family's header, and its occurrence should one family be yielded twice


@dataclass(frozen=True)
class Layout:
    """One rendering in one format: the families' identities and each one's sample lines, aligned."""

    idents: tuple[Ident, ...]
    samples: tuple[bytes, ...]

    @classmethod
    def of(cls, rendered: bytes, layouts: dict[tuple[Ident, ...], tuple[Ident, ...]]) -> "Layout":
        seen: dict[bytes, int] = {}
        idents, samples = [], []
        for header, lines in blocks(rendered):
            seen[header] = seen.get(header, -1) + 1
            idents.append((header, seen[header]))
            samples.append(lines)
        key = tuple(idents)
        # one shared tuple per distinct family list, so assembling can tell "same families" by identity
        return cls(layouts.setdefault(key, key), tuple(samples))

    def bytes(self) -> bytes:
        return b"".join(header + lines for (header, _), lines in zip(self.idents, self.samples))


@dataclass(frozen=True)
class _Lines:
    """One target's (or the skeleton's, or a whole collector's) rendered lines in both formats."""

    key: Hashable
    text: Layout
    openmetrics: Layout


def _render(families: Iterable[Family], key: Hashable, layouts: dict) -> _Lines:
    source = _Families(list(families))
    return _Lines(key, Layout.of(generate_latest(source), layouts),
                  Layout.of(generate_openmetrics(source).removesuffix(OPENMETRICS_EOF), layouts))


def _assemble(skeleton: Layout, parts: Sequence[Layout]) -> bytes:
    """Each family's header, then the lines of every part in order. Families are ordered as the skeleton
    (the families of no target) has them; one only some targets yield comes after the family that
    precedes it in that target's own order."""
    if all(part.idents is skeleton.idents for part in parts):   # the usual case: every target, every family
        columns = zip(*(part.samples for part in parts)) if parts else iter([()] * len(skeleton.idents))
        return b"".join(header + b"".join(column) for (header, _), column in zip(skeleton.idents, columns))
    order = list(skeleton.idents)
    lines: dict[Ident, list[bytes]] = {ident: [] for ident in order}
    for part in parts:
        previous = None
        for ident, samples in zip(part.idents, part.samples):
            if ident not in lines:
                order.insert(order.index(previous) + 1 if previous is not None else 0, ident)
                lines[ident] = []
            if samples:
                lines[ident].append(samples)
            previous = ident
    return b"".join(ident[0] + b"".join(lines[ident]) for ident in order)


@dataclass
class _CollectorCache:
    skeleton: _Lines | None = None
    per_target: bool = True
    targets: dict[int, tuple[Target, _Lines]] = field(default_factory=dict)
    whole: _Lines | None = None
    layouts: dict = field(default_factory=dict)


class IncrementalRenderer:
    """Renders `registry` (a `TrackingRegistry`) as `exposition.render` would, byte for byte, re-rendering
    only the targets of each `SnapshotCollector` whose key changed. Called once per render (in the
    exposition's worker thread); `rendered_targets` counts the targets it had to render, for tests and
    benchmarks."""

    def __init__(self, registry: TrackingRegistry) -> None:
        self.registry = registry
        self._caches: dict[int, _CollectorCache] = {}
        self.rendered_targets = 0
        self.failed = False     # the last call fell back to a full render (logged once per episode)

    def __call__(self) -> Rendered:
        """The incremental render; should it ever fail, a full render (the reference it must equal) with
        the caches dropped, so a renderer bug can cost CPU but never freeze or corrupt the exposition."""
        try:
            rendered = self._render()
        except Exception:  # noqa: BLE001 - any bug here must fall back, not stop the exporter's renders
            if not self.failed:
                log.warning("incremental render failed, rendering in full meanwhile", exc_info=True)
            self.failed = True
            self._caches.clear()
            return render(self.registry)
        self.failed = False
        return rendered

    def _render(self) -> Rendered:
        texts, openmetrics = [], []
        for collector in list(self.registry.collectors):
            if isinstance(collector, SnapshotCollector):
                text, om = self._snapshot(collector)
            else:
                source = _Families(list(collector.collect()))
                text = generate_latest(source)
                om = generate_openmetrics(source).removesuffix(OPENMETRICS_EOF)
            texts.append(text)
            openmetrics.append(om)
        return _rendered(b"".join(texts), b"".join(openmetrics) + OPENMETRICS_EOF)

    def _snapshot(self, collector: SnapshotCollector) -> tuple[bytes, bytes]:
        cache = self._caches.setdefault(id(collector), _CollectorCache())
        now = collector.clock()
        data = collector.fresh(now)
        version = collector.version()
        if cache.skeleton is None or cache.skeleton.key != version:
            cache.layouts.clear()
            cache.skeleton = _render(collector.collect_targets({}, []), version, cache.layouts)
            # A sample that belongs to no target (the price exporter's tariff figures) means this
            # collector cannot be split by target: render it whole whenever any key changed.
            cache.per_target = not any(cache.skeleton.text.samples)
            cache.targets.clear()
            cache.whole = None
        keys = [self.key(collector, target, data, now, version) for target in collector.targets]
        if not cache.per_target:
            whole_key = (version, tuple(keys))
            if cache.whole is None or cache.whole.key != whole_key:
                cache.whole = _render(collector.collect_targets(data, collector.targets), whole_key, cache.layouts)
                self.rendered_targets += len(keys)
            return cache.whole.text.bytes(), cache.whole.openmetrics.bytes()
        fresh: dict[int, tuple[Target, _Lines]] = {}
        for target, key in zip(collector.targets, keys):
            cached = cache.targets.get(id(target))
            if cached is None or cached[1].key != key:
                cached = (target, _render(collector.collect_targets(data, [target]), key, cache.layouts))
                self.rendered_targets += 1
            fresh[id(target)] = cached
        cache.targets = fresh   # targets no longer watched leave the cache
        lines = [fresh[id(target)][1] for target in collector.targets]
        return (_assemble(cache.skeleton.text, [part.text for part in lines]),
                _assemble(cache.skeleton.openmetrics, [part.openmetrics for part in lines]))

    @staticmethod
    def key(collector: SnapshotCollector, target: Target, data: Any, now: float, version: Hashable) -> Hashable:
        """Everything a target's lines depend on. Snapshots by identity (a poll always makes a new one);
        freshness as `fresh` judged it; the primary poller's health by value (a failure updates it in place)."""
        fresh = data[target.name]
        pollers = tuple((endpoint, _Same(p.latest), endpoint in fresh)
                        for endpoint, p in target.pollers.items())
        primary = target.pollers.get(target.primary)
        health = (primary.health.up, primary.health.last_success) if primary else None
        return (target.name, target.primary, version, health, pollers)
