"""The /plans page: each car's departure plan over the price forecast, its last sessions, and a form to
set the departure and target. Server-rendered from a jinja2 template; the chart is an inline SVG laid
out here (no JavaScript, no front-end build, nothing fetched from elsewhere)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Mapping
from zoneinfo import ZoneInfo

import jinja2

from session_store.departure import WEEKDAYS, format_weekly
from session_store.planner import CarPlan, Hour
from session_store.planning import Planning
from session_store.storage import Storage
from session_store.views import PlanningView, PlanStatus

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 760, 220, 44, 44, 12, 28
COLOURS = {"realized": "#6b7280", "day_ahead": "#1f77b4", "profile": "#9ecae1"}
PLANNED = "#2ca02c"
ENV = jinja2.Environment(loader=jinja2.PackageLoader("session_store", "templates"),
                         autoescape=jinja2.select_autoescape(["html", "j2"]))


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    planned: tuple[Bar, ...]
    ticks: tuple[tuple[float, str], ...]         # (x, local hour label)
    price_max: float
    energy_max_kwh: float
    departure_x: float | None = None            # where the departure falls, when inside the chart


def chart(hours: tuple[Hour, ...], plan: CarPlan | None, zone: ZoneInfo, departure: float | None = None) -> Chart | None:
    """Price bars per clock hour (coloured by source), and the plan's energy per hour over them (right axis)."""
    if not hours:
        return None
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / len(hours)
    top_price = max(1.0, max(h.cents for h in hours)) * 1.1
    bottom = TOP + plot_h
    bars, ticks = [], []
    for i, hour in enumerate(hours):
        height = max(0.0, hour.cents) / top_price * plot_h
        local = datetime.fromtimestamp(hour.start, zone)
        bars.append(Bar(LEFT + i * step + 1, bottom - height, max(1.0, step - 2), height, COLOURS.get(hour.source, "#999"),
                        f"{local:%a %H:00}: {hour.cents:.1f} ¢/kWh ({hour.source.replace('_', '-')})"))
        if local.hour % 6 == 0:
            ticks.append((LEFT + i * step, f"{local:%a %H:00}"))
    planned = []
    energy = {h.start: h.energy_wh for h in plan.hours} if plan else {}
    top_energy = max(energy.values(), default=0.0) / 1000 * 1.1 or 1.0
    for i, hour in enumerate(hours):
        wh = energy.get(hour.start, 0.0)
        if wh <= 0:
            continue
        height = wh / 1000 / top_energy * plot_h
        planned.append(Bar(LEFT + i * step + step * 0.25, bottom - height, max(1.0, step * 0.5), height, PLANNED,
                           f"planned {wh / 1000:.1f} kWh"))
    x = None
    if departure is not None and hours[0].start <= departure <= hours[-1].end:
        x = LEFT + (departure - hours[0].start) / 3600 * step
    return Chart(WIDTH, HEIGHT, tuple(bars), tuple(planned), tuple(ticks), top_price, top_energy, x)


def render(view: PlanningView, planning: Planning, storage: Storage, names: Mapping[str, str], zone: ZoneInfo,
           now: float, message: str | None) -> str:
    statuses = {s.vin: s for s in view.cars}
    vins = sorted(set(names) | set(planning.departures) | set(statuses))
    cars = []
    for vin in vins:
        status: PlanStatus | None = statuses.get(vin)
        departure = planning.departures.get(vin)
        sessions = storage.vin_sessions(vin, now - 30 * 86400, now)[-5:][::-1]
        cars.append({"vin": vin, "name": (status.vehicle if status else None) or names.get(vin) or vin,
                     "status": status, "departure": departure,
                     "weekly": format_weekly(departure.weekly) if departure else {},
                     "chart": chart(view.hours, status.plan if status else None, zone,
                                    status.next_departure if status else None),
                     "sessions": sessions,
                     "revisions": storage.plan_revisions(vin, limit=5)})

    def local(moment: float | None, fmt: str = "%a %d %b %H:%M") -> str:
        return "" if moment is None else datetime.fromtimestamp(moment, zone).strftime(fmt)

    return ENV.get_template("plans.html.j2").render(
        view=view, cars=cars, message=message, local=local, weekdays=WEEKDAYS, colours=COLOURS, planned=PLANNED,
        default_departure=local(now + 86400, "%Y-%m-%dT07:00"), zone=str(zone),
        has_hours=bool(view.hours))
