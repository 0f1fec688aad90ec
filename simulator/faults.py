"""Fault specs (scenario ``faults:`` entries and ``POST /sim/faults`` bodies) and the live registry.

A fault spec is a mapping::

    target: wall_connector:garage/vitals | wall_connector | tessie/*/state | fleet/energy_sites | comed
            | opower/cost
    kind:   hang | slow | status | malformed | truncated | nan | wrong_types | missing_fields
            | big_body | reset | empty
    at: 30m          # scenario offset from origin when it starts (live faults: default now)
    duration: 2m     # how long the window lasts (sim time; default: until cleared)
    count: 3         # only the next N matching requests
    # kind options:
    status: 429, retry_after: 30, body: "...", headers: {X: y}   # kind status
    delay: 5s                                                      # kind slow (real seconds)
    hold: 10s, then: answer | drop                                 # kind hang (hold = real-seconds cap)
    fields: [avg_startup_temp]                                     # nan / wrong_types / missing_fields
    random: 3                                                      # missing_fields without fields
    style: string | object                                         # wrong_types
    size_mb: 50                                                    # big_body
    cut_bytes: 1                                                   # truncated

The target path after ``/`` is matched against the request path relative to the upstream's
root (``/api/1/`` for the Wall Connector and Fleet, ``/`` for Tessie, the ``type`` parameter
for ComEd, ``/api`` and ``/rrtp/ServletFeed`` alike: ``comed/daynext*``; for the utility meter a short
endpoint name: ``opower/login``, ``mfa``, ``token``, ``accounts``, ``customers``, ``cost``, ``reads``,
``graphql``): as a glob when it
contains ``*?[``, else as a prefix. ComEd's day-ahead feed is text, not JSON: ``nan``,
``wrong_types`` and ``missing_fields`` leave it unchanged, ``malformed`` prefixes a ``{``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from simulator.schema import Section, fail, parse_duration

UPSTREAMS = ("wall_connector", "tessie", "fleet", "comed", "opower")
KINDS = ("hang", "slow", "status", "malformed", "truncated", "nan", "wrong_types", "missing_fields",
         "big_body", "reset", "empty")
_TARGET = re.compile(r"^(wall_connector|tessie|fleet|comed|opower)(?::([^/]+))?(?:/(.*))?$")


@dataclass(frozen=True)
class FaultSpec:
    upstream: str
    kind: str
    charger: str | None = None
    path: str | None = None
    at_s: float | None = None
    duration_s: float | None = None
    count: int | None = None
    status: int = 503
    retry_after: int | None = None
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 5.0
    hold_s: float | None = None
    then: str = "answer"
    fields: tuple[str, ...] = ()
    random: int = 3
    style: str = "string"
    size_mb: float = 50.0
    cut_bytes: int = 1
    target: str = ""

    def matches(self, upstream: str, charger: str | None, relpath: str) -> bool:
        if upstream != self.upstream or (self.charger is not None and charger != self.charger):
            return False
        if not self.path:
            return True
        if any(ch in self.path for ch in "*?["):
            return fnmatch.fnmatchcase(relpath, self.path)
        return relpath.startswith(self.path)


def parse_fault(data: Any, path: str, chargers: Iterable[str]) -> FaultSpec:
    """Validate one fault mapping (``chargers`` = known charger names)."""
    s = Section(data, path)
    target = s.str("target")
    match = _TARGET.match(target)
    if not match:
        raise fail(s.key_path("target"), f"got {target!r}",
                   "use wall_connector[:name][/endpoint], tessie[/path], fleet[/path], comed[/type] "
                   "or opower[/endpoint]")
    upstream, charger, rel = match.groups()
    names = list(chargers)
    if charger is not None and upstream != "wall_connector":
        raise fail(s.key_path("target"), f"{upstream} takes no :name", "drop the :name part")
    if charger is not None and charger not in names:
        raise fail(s.key_path("target"), f"unknown charger {charger!r}", f"use one of {', '.join(names)}")
    kind = s.str("kind", choices=KINDS)
    if kind == "empty" and upstream != "comed":
        raise fail(s.key_path("kind"), "empty only applies to comed", "target comed or pick another kind")
    options: dict[str, Any] = {}
    if kind == "status":
        options["status"] = s.int("status", min=100, max=599)
        options["retry_after"] = _retry_after(s)
        options["body"] = s.str("body", None)
        headers = s.section("headers")
        options["headers"] = tuple((k, headers.str(k)) for k in headers.data)
        headers.finish()
    elif kind == "slow":
        options["delay_s"] = s.duration("delay", 5.0)
    elif kind == "hang":
        options["hold_s"] = s.duration("hold", None)
        options["then"] = s.str("then", "answer", choices=("answer", "drop"))
    elif kind in ("nan", "wrong_types", "missing_fields"):
        fields = s.raw("fields", [])
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise fail(s.key_path("fields"), f"got {fields!r}", "use a list of key names")
        options["fields"] = tuple(fields)
        if kind == "missing_fields":
            options["random"] = s.int("random", 3, min=1)
        if kind == "wrong_types":
            options["style"] = s.str("style", "string", choices=("string", "object"))
    elif kind == "big_body":
        options["size_mb"] = s.float("size_mb", 50.0, min=0.001, max=1024)
    elif kind == "truncated":
        options["cut_bytes"] = s.int("cut_bytes", 1, min=1)
    spec = FaultSpec(
        upstream=upstream, kind=kind, charger=charger, path=rel or None, target=target,
        at_s=s.duration("at", None), duration_s=s.duration("duration", None), count=s.int("count", None, min=1),
        **options,
    )
    s.finish()
    return spec


def _retry_after(s: Section) -> int | None:
    value = s.raw("retry_after", None)
    if value is None:
        return None
    return int(round(parse_duration(value, s.key_path("retry_after"))))


@dataclass
class ActiveFault:
    """A fault registered with the server: its window (absolute sim time) and usage."""

    id: str
    spec: FaultSpec
    start: float
    end: float | None
    remaining: int | None
    hits: int = 0
    cleared: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def active(self, now: float) -> bool:
        if self.cleared or (self.remaining is not None and self.remaining <= 0):
            return False
        return self.start <= now and (self.end is None or now < self.end)

    def holding(self, now: float) -> bool:
        """Whether a hung request should keep waiting (the count was spent on admission)."""
        return not self.cleared and self.start <= now and (self.end is None or now < self.end)

    def to_json(self, now: float) -> dict[str, Any]:
        return {"id": self.id, "target": self.spec.target, "kind": self.spec.kind, "start": self.start,
                "end": self.end, "remaining": self.remaining, "hits": self.hits, "active": self.active(now)}


class FaultRegistry:
    """Faults in creation order; the first active match wins for a request."""

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self._faults: dict[str, ActiveFault] = {}
        self._ids = itertools.count(1)

    def add(self, spec: FaultSpec, now: float) -> ActiveFault:
        start = self.origin + spec.at_s if spec.at_s is not None else now
        end = start + spec.duration_s if spec.duration_s is not None else None
        fault = ActiveFault(f"f{next(self._ids)}", spec, start, end, spec.count)
        self._faults[fault.id] = fault
        return fault

    def get(self, fault_id: str) -> ActiveFault | None:
        return self._faults.get(fault_id)

    def remove(self, fault_id: str) -> bool:
        fault = self._faults.pop(fault_id, None)
        if fault is None:
            return False
        fault.cleared = True
        fault.released.set()
        return True

    def clear(self) -> int:
        ids = list(self._faults)
        for fault_id in ids:
            self.remove(fault_id)
        return len(ids)

    def all(self) -> list[ActiveFault]:
        return list(self._faults.values())

    def admit(self, upstream: str, charger: str | None, relpath: str, now: float) -> ActiveFault | None:
        """The fault that applies to this request, with its hit counted (and count consumed)."""
        for fault in self._faults.values():
            if fault.active(now) and fault.spec.matches(upstream, charger, relpath):
                fault.hits += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None
