"""Smart charging decisions: a pure function of the market, one vehicle and what we remember of it.

Decide on what is billed. ComEd bills every kWh of a clock hour at the mean of that hour's twelve
5-minute prices, so the signal is the projected price of the hour in progress (its published prices,
the rest at the latest one), against percentiles of billed hourly prices. Stop a charging car when
the signal is above the stop threshold (the lookback's 90th percentile); start a car we paused when
it falls below the resume threshold (75th); between the two nothing changes (hysteresis). Never two
commands for one vehicle within `min_interval_s`.

The consequence of hourly billing is built into the signal: after a spike the rest of its hour
still pays the spike's share of the mean, so the projection stays high and the car stays paused
until the hour's remaining energy is worth drawing, usually the next hour. The 5-minute rule
(`signal: five_minute`, kept for comparison) resumes on the next cheap 5-minute price, inside the
expensive hour.

Safe by default:
- with a stale price, Prometheus unreachable, no thresholds or too little history, never stop a
  car, and resume one we paused;
- a user who starts charging by hand while we have the car paused wins until that plug-in session
  ends; power seen within `settle_s` of our stop is the data lagging the command, not the user;
- a manual override (pause smart charging for a vehicle until a time) resumes what we paused and
  then leaves the car alone;
- a stop that keeps failing is given up (the car charges); a start that fails is retried with backoff.

In dry run the actions are `stop_simulated` / `start_simulated`: the car keeps charging, so its
charging while "paused" is not mistaken for the user taking over.

    decide(market, vehicle, memory, params, now) -> Decision(action, reason)
    remember(memory, decision, ok, now, params) -> memory'
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

STOP, START = "stop", "start"


@dataclass(frozen=True)
class Market:
    price: float | None              # the signal decided on, cents per kWh (see `signal`)
    price_age_s: float | None        # seconds since the end of the latest 5-minute price's interval
    stop_threshold: float | None     # cents per kWh, percentiles of the signal's own history
    resume_threshold: float | None
    history_days: float              # days of prices behind the thresholds
    prometheus_ok: bool = True
    price_rank: float | None = None  # percent of the lookback's prices at or below the signal (shown, not decided on)
    signal: str = "billed"           # billed: the projected hour price; five_minute: the latest 5-minute price
    five_minute_price: float | None = None
    hour_projected: float | None = None   # the projected price of the billing hour in progress


@dataclass(frozen=True)
class VehicleNow:
    vin: str
    plugged: bool                    # a unit reports this VIN
    charging: bool                   # that unit's power is above the session threshold
    session_start: float | None = None   # start of the plug-in session (scopes a user override)
    unit: str | None = None              # the Wall Connector it is plugged into
    din: str | None = None               # that unit's DIN (its power series)


@dataclass(frozen=True)
class Memory:
    """What survives restarts (kept in SQLite): our pause, our last command, the user's overrides."""

    paused_by_us: bool = False
    simulated: bool = False          # the pause was a dry-run one
    paused_at: float | None = None
    last_command_at: float | None = None
    failures: int = 0
    retry_at: float | None = None
    user_session: float | None = None        # the plug-in session in which the user overrode us
    override_until: float | None = None      # smart charging off for this vehicle until then
    paused_for: str | None = None            # the reason of our pause (plan_wait: a departure plan paused it)


@dataclass(frozen=True)
class Params:
    max_price_age_s: float = 900.0
    min_history_days: float = 7.0
    min_interval_s: float = 600.0
    dry_run: bool = True
    max_stop_failures: int = 3
    retry_base_s: float = 60.0
    retry_max_s: float = 900.0
    settle_s: float = 120.0          # how long unit power may lag our stop (polls, scrapes, the car ramping down)


@dataclass(frozen=True)
class Decision:
    action: str | None       # stop, start, stop_simulated, start_simulated, or None
    reason: str

    @property
    def kind(self) -> str | None:
        """stop or start, whether real or simulated."""
        return None if self.action is None else self.action.split("_")[0]


def unsafe(market: Market, params: Params) -> str | None:
    """Why the market cannot be trusted to stop a car, or None when it can."""
    if not market.prometheus_ok:
        return "prometheus_unreachable"
    if market.price is None or market.price_age_s is None:
        return "no_price"
    if market.price_age_s > params.max_price_age_s:
        return "stale_price"
    if market.stop_threshold is None or market.resume_threshold is None:
        return "no_thresholds"
    if market.history_days < params.min_history_days:
        return "too_little_history"
    return None


def _act(kind: str, reason: str, memory: Memory, params: Params, now: float) -> Decision:
    if memory.last_command_at is not None and now - memory.last_command_at < params.min_interval_s:
        return Decision(None, f"min_interval ({reason})")
    if memory.retry_at is not None and now < memory.retry_at:
        return Decision(None, f"retry_backoff ({reason})")
    simulated = params.dry_run if kind == STOP else memory.simulated
    return Decision(f"{kind}_simulated" if simulated else kind, reason)


def _decide(vehicle: VehicleNow, memory: Memory, params: Params, now: float,
            paused: Callable[[], Decision], charging: Callable[[], Decision]) -> Decision:
    """What every rule shares: an unplugged car forgets our pause; the user's hand and override win;
    then the rule's own decision for a car we paused (`paused`) or a charging car (`charging`)."""
    overridden = memory.override_until is not None and now < memory.override_until
    if memory.paused_by_us:
        if not vehicle.plugged:
            return Decision(None, "unplugged")
        if vehicle.charging and not memory.simulated:
            if memory.paused_at is not None and now - memory.paused_at < params.settle_s:
                return Decision(None, "stopping")
            return Decision(None, "user_started_charging")
        if overridden:
            return _act(START, "manual_override", memory, params, now)
        return paused()
    if not vehicle.charging:
        return Decision(None, "not_charging")
    if overridden:
        return Decision(None, "manual_override")
    if memory.user_session is not None and memory.user_session == vehicle.session_start:
        return Decision(None, "user_override")
    return charging()


def decide(market: Market, vehicle: VehicleNow, memory: Memory, params: Params, now: float) -> Decision:
    """The threshold rule."""
    problem = unsafe(market, params)

    def paused() -> Decision:
        if problem:
            return _act(START, f"fail_safe_{problem}", memory, params, now)
        if market.price < market.resume_threshold:  # type: ignore[operator]
            return _act(START, "price_below_resume", memory, params, now)
        return Decision(None, "holding")

    def charging() -> Decision:
        if problem:
            return Decision(None, f"fail_safe_{problem}")
        if market.price > market.stop_threshold:  # type: ignore[operator]
            return _act(STOP, "price_above_stop", memory, params, now)
        return Decision(None, "price_ok")
    return _decide(vehicle, memory, params, now, paused, charging)


def decide_planned(charge: bool, reason: str, vehicle: VehicleNow, memory: Memory, params: Params,
                   now: float) -> Decision:
    """A car with a departure plan: charge in its planned hours, pause outside them. `charge` is the
    plan's verdict for now and `reason` says why (plan_charge, plan_must_charge when the target is at
    risk, plan_wait, or fail_safe_... when the plan cannot be trusted: then charge now). The user's
    override and hand-started charging win as with the threshold rule."""
    return _decide(vehicle, memory, params, now,
                   lambda: _act(START, reason, memory, params, now) if charge else Decision(None, reason),
                   lambda: Decision(None, reason) if charge else _act(STOP, reason, memory, params, now))


def remember(memory: Memory, decision: Decision, vehicle: VehicleNow, ok: bool | None, now: float,
             params: Params) -> Memory:
    """The memory after a decision and, when a command was sent, its outcome (None = nothing sent)."""
    if decision.action is None:
        if decision.reason == "unplugged":
            return replace(memory, paused_by_us=False, simulated=False, paused_at=None, failures=0, retry_at=None,
                           user_session=None, paused_for=None)
        if decision.reason == "user_started_charging":
            return replace(memory, paused_by_us=False, paused_at=None, user_session=vehicle.session_start,
                           paused_for=None)
        return memory
    if ok:
        paused = decision.kind == STOP
        return replace(memory, paused_by_us=paused, simulated=paused and decision.action.endswith("simulated"),
                       paused_at=now if paused else None, last_command_at=now, failures=0, retry_at=None,
                       paused_for=decision.reason if paused else None)
    failures = memory.failures + 1
    if decision.kind == STOP and failures >= params.max_stop_failures:
        return replace(memory, failures=0, retry_at=now + params.retry_max_s)   # give up stopping: it charges
    delay = min(params.retry_max_s, params.retry_base_s * 2 ** (failures - 1))
    return replace(memory, failures=failures, retry_at=now + delay)


STATUS = {0: "not_charging", 1: "charging", 2: "paused", 3: "paused_simulated", 4: "user_override",
          5: "manual_override", 6: "fail_safe"}


def status_code(vehicle: VehicleNow | None, memory: Memory | None, decision: Decision | None) -> int:
    """The vehicle's smart-charging status (a key of STATUS) from what the last evaluation saw and decided."""
    reason = decision.reason if decision else ""
    if memory is not None and memory.paused_by_us:
        return 3 if memory.simulated else 2
    if reason.startswith("manual_override"):
        return 5
    if reason in ("user_override", "user_started_charging"):
        return 4
    if reason.startswith("fail_safe") and vehicle is not None and vehicle.charging:
        return 6
    return 1 if vehicle is not None and vehicle.charging else 0
