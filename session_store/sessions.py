"""Charging sessions from a unit's power samples: a pure state machine fed arrays.

A session starts at the first sample above `threshold_w` and ends at its last sample above it
once power has stayed below for longer than `grace_s` (brief dips do not split a session) or
the vehicle disconnects. Energy is the trapezoid integral of the samples, including the ramp up
from the sample before the start and the ramp down to the first sample after the end; dips
inside the session count, the idle tail after the end does not. Segments longer than
`max_gap_s` (missing data: exporter or Prometheus down) are not integrated: their duration is
recorded as `gap_s` instead of inventing energy across them.

Energy is also split by the 5-minute price interval it fell in (a price stamped T covers
(T - 300, T], see upstreams/comed.py), so costing is exact for the trapezoid model.

    step(state, t, watts, connected, vins, params) -> (state', completed, discarded)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

INTERVAL_S = 300.0


@dataclass(frozen=True)
class Params:
    threshold_w: float = 100.0
    grace_s: float = 600.0
    max_gap_s: float = 300.0
    min_energy_wh: float = 100.0
    min_duration_s: float = 60.0


@dataclass(frozen=True)
class OpenSession:
    start: float
    last_above: float
    energy_wh: float = 0.0
    intervals: dict[float, float] = field(default_factory=dict)   # interval end -> Wh, committed
    pending_wh: float = 0.0                                         # below-threshold tail, kept if power returns
    pending: dict[float, float] = field(default_factory=dict)
    peak_w: float = 0.0
    gap_s: float = 0.0
    vin: str | None = None
    span_s: float = 0.0                # seconds integrated into energy_wh (ramps in, gaps out)
    pending_span_s: float = 0.0        # seconds of the below-threshold tail, kept if power returns


@dataclass(frozen=True)
class UnitState:
    """Everything needed to continue after a restart: the last sample and the open session."""

    last_t: float | None = None
    last_w: float | None = None
    open: OpenSession | None = None


@dataclass(frozen=True)
class Completed:
    start: float
    end: float
    energy_wh: float
    peak_w: float
    intervals: dict[float, float]
    gap_s: float
    vin: str | None
    span_s: float | None = None   # seconds the energy was integrated over (the ramps included, gaps not)

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def average_w(self) -> float:
        """Energy over the time it was integrated over: the ramps into and out of the session count
        on both sides, so a short session's average never exceeds its peak."""
        seconds = self.span_s if self.span_s else self.duration_s
        return self.energy_wh * 3600.0 / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class Discarded:
    start: float
    end: float
    energy_wh: float
    reason: str        # too_short | too_small


def segment_energy(t0: float, w0: float, t1: float, w1: float) -> dict[float, float]:
    """Trapezoid energy (Wh) of one segment, split exactly at 5-minute boundaries by interval end."""
    boundaries = np.arange(math.floor(t0 / INTERVAL_S) * INTERVAL_S + INTERVAL_S, t1, INTERVAL_S)
    times = np.concatenate(([t0], boundaries, [t1]))
    watts = np.interp(times, [t0, t1], [max(w0, 0.0), max(w1, 0.0)])
    energy = (watts[1:] + watts[:-1]) / 2 * np.diff(times) / 3600.0
    ends = np.ceil(((times[1:] + times[:-1]) / 2) / INTERVAL_S) * INTERVAL_S
    return {float(end): float(wh) for end, wh in zip(ends, energy) if wh}


def _add(target: dict[float, float], extra: dict[float, float]) -> dict[float, float]:
    merged = dict(target)
    for end, wh in extra.items():
        merged[end] = merged.get(end, 0.0) + wh
    return merged


def _segment(session: OpenSession, t0: float, w0: float, t1: float, w1: float, params: Params,
             committed: bool) -> OpenSession:
    if t1 - t0 > params.max_gap_s:
        return replace(session, gap_s=session.gap_s + (t1 - t0))
    parts = segment_energy(t0, w0, t1, w1)
    wh = sum(parts.values())
    if committed:
        return replace(session, energy_wh=session.energy_wh + wh, intervals=_add(session.intervals, parts),
                       span_s=session.span_s + (t1 - t0))
    return replace(session, pending_wh=session.pending_wh + wh, pending=_add(session.pending, parts),
                   pending_span_s=session.pending_span_s + (t1 - t0))


def _close(session: OpenSession, params: Params) -> Completed | Discarded:
    duration = session.last_above - session.start
    if duration < params.min_duration_s:
        return Discarded(session.start, session.last_above, session.energy_wh, "too_short")
    if session.energy_wh < params.min_energy_wh:
        return Discarded(session.start, session.last_above, session.energy_wh, "too_small")
    return Completed(session.start, session.last_above, session.energy_wh, session.peak_w, session.intervals,
                     session.gap_s, session.vin, session.span_s or None)


def known_alike(samples: Sequence[tuple[float, float]], connected: Sequence[tuple[float, bool]], late_s: float,
                ) -> tuple[list[tuple[float, float]], list[tuple[float, bool]]]:
    """The power samples and link observations up to the newest time both series have reached, when one
    lags the other by less than `late_s`: a series delivered later (Prometheus's remote write sends each
    series in its own batches) must not let `step` run past an unplug it cannot see yet, since it never
    goes back. A link series further behind has stopped, not lagged: then nothing is held back."""
    if not samples or not connected:
        return list(samples), list(connected)
    newest_power, newest_link = samples[-1][0], max(time for time, _ in connected)
    horizon = min(newest_power, newest_link)
    if max(newest_power, newest_link) - horizon >= late_s:
        return list(samples), list(connected)
    return [s for s in samples if s[0] <= horizon], [c for c in connected if c[0] <= horizon]


def step(state: UnitState, t: Sequence[float], watts: Sequence[float], params: Params,
         connected: Sequence[tuple[float, bool]] = (), vins: Sequence[tuple[float, str | None]] = (),
         ) -> tuple[UnitState, list[Completed | Discarded]]:
    """Feed samples newer than the state's last one (older ones are ignored, so replays are harmless).

    `connected` and `vins` are (time, value) observations of the vehicle link; a disconnect ends an
    open session at once, and the VIN seen while a session is open names its vehicle.
    """
    closed: list[Completed | Discarded] = []
    last_t, last_w, session = state.last_t, state.last_w, state.open
    seen = float("-inf") if last_t is None else last_t   # observations up to here were already applied
    links = sorted(link for link in connected if link[0] > seen)
    names = sorted((time, vin) for time, vin in vins if vin and time > seen)
    li = ni = 0
    for time, power in zip(map(float, t), map(float, watts)):
        if last_t is not None and time <= last_t:
            continue
        while ni < len(names) and names[ni][0] <= time:
            if session is not None:
                session = replace(session, vin=names[ni][1])
            ni += 1
        unplugged = False
        while li < len(links) and links[li][0] <= time:
            unplugged = unplugged or not links[li][1]
            li += 1
        above = power > params.threshold_w
        if session is None:
            if above:
                session = OpenSession(start=time, last_above=time, peak_w=power)
                if names and ni:
                    session = replace(session, vin=names[ni - 1][1])
                if last_t is not None and last_w is not None:
                    session = _segment(session, last_t, last_w, time, power, params, committed=True)
        else:
            previous_above = last_w is not None and last_w > params.threshold_w
            session = _segment(session, last_t, last_w, time, power, params, committed=previous_above or above)
            if above:
                session = replace(session, last_above=time, peak_w=max(session.peak_w, power),
                                  span_s=session.span_s + session.pending_span_s, pending_span_s=0.0,
                                  energy_wh=session.energy_wh + session.pending_wh,
                                  intervals=_add(session.intervals, session.pending), pending_wh=0.0, pending={})
            if unplugged or (not above and time - session.last_above > params.grace_s):
                closed.append(_close(session, params))
                session = None
        last_t, last_w = time, power
    return UnitState(last_t, last_w, session), closed
