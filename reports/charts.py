"""The report's charts as PNG bytes (matplotlib, Agg), drawn once and embedded in both the HTML and the PDF.

matplotlib's Agg backend is chosen before anything else of matplotlib is imported, and pyplot is never
used: each chart is its own `Figure` with no global state, so the session store can render reports in
worker threads. A lock still serialises drawing, because matplotlib's text and font caches are shared.
PNG at 110 dpi is about 30 kB a chart and renders in ~0.1 s; the plot areas have a light tint so a chart is
easy to tell from text (the PDF test finds them by it).
"""
from __future__ import annotations

import io
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")

from matplotlib.dates import DateFormatter, DayLocator, MonthLocator, date2num  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from reports.model import Report  # noqa: E402

DPI = 110
WIDTH_IN = 7.4
PLOT_FACE = "#e9eef5"
ENERGY, COST, HOME = "#2f6db5", "#d9822b", "#b5b9c0"
PARTS = {"supply": "#2f6db5", "delivery": "#6aa84f", "fixed": "#9e9e9e", "capacity": "#d9822b"}
_LOCK = threading.Lock()


def _figure(height_in: float) -> tuple[Figure, object]:
    figure = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI)
    axes = figure.add_subplot()
    axes.set_facecolor(PLOT_FACE)
    axes.grid(axis="y", color="white", linewidth=1.0)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _png(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.08, facecolor="white")
    return out.getvalue()


def energy_chart(report: Report) -> bytes:
    """kWh bars per day (month) or month (year), the home's metered kWh behind them, cost on the right."""
    figure, axes = _figure(2.9)
    bars = report.bars
    x = list(range(len(bars)))
    homes = [b.home_kwh for b in bars]
    if any(h is not None for h in homes):
        axes.bar(x, [h or 0.0 for h in homes], width=0.8, color=HOME, label="home (meter)")
    axes.bar(x, [b.energy_kwh for b in bars], width=0.6 if report.bar_unit == "day" else 0.55, color=ENERGY,
             label="EV charging")
    axes.set_ylabel("kWh")
    step = 1 if len(bars) <= 12 else 2
    axes.set_xticks(x[::step], [b.label for b in bars][::step], fontsize=8)
    axes.set_xlim(-0.7, len(bars) - 0.3)
    cost = axes.twinx()
    cost.plot(x, [b.cost for b in bars], color=COST, marker="o", markersize=3, linewidth=1.4, label="charging cost")
    cost.set_ylabel("dollars")
    cost.set_ylim(bottom=0, top=max([b.cost for b in bars] + [0.01]) * 1.15)
    cost.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:,.0f}" if v >= 10 else f"${v:,.2f}"))
    cost.spines["top"].set_visible(False)
    handles = axes.get_legend_handles_labels()
    extra = cost.get_legend_handles_labels()
    axes.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper left", fontsize=8, frameon=False, ncol=3)
    axes.set_ylim(top=max([b.energy_kwh for b in bars] + [h or 0.0 for h in homes] + [1.0]) * 1.18)
    return _png(figure)


def breakdown_chart(report: Report) -> bytes:
    """One horizontal bar per part of the bill (a credit from negative prices shows to the left)."""
    figure, axes = _figure(1.9)
    parts = list(report.breakdown)
    y = list(range(len(parts)))[::-1]
    axes.barh(y, [p.dollars for p in parts], color=[PARTS.get(p.name, ENERGY) for p in parts], height=0.6)
    axes.set_yticks(y, [p.name for p in parts], fontsize=9)
    axes.grid(axis="x", color="white", linewidth=1.0)
    axes.grid(axis="y", visible=False)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:,.0f}"))
    high = max([p.dollars for p in parts] + [1.0])
    for yi, part in zip(y, parts):
        axes.text(max(part.dollars, 0) + high * 0.01, yi, f"${part.dollars:,.2f}", va="center", fontsize=8)
    axes.set_xlim(min([p.dollars for p in parts] + [0.0]) * 1.1, high * 1.2)
    return _png(figure)


def price_chart(report: Report, zone: ZoneInfo) -> bytes:
    """The mean billed hourly price per day, and each session at its start and supply price."""
    figure, axes = _figure(2.7)
    trend = report.price_trend
    if trend.days:
        days = [date2num(datetime.fromisoformat(d.day + "T12:00")) for d in trend.days]
        axes.plot(days, [d.mean_cents for d in trend.days], color=ENERGY, linewidth=1.3,
                  label="mean billed hourly price")
    marks = [m for m in trend.sessions if m.supply_cents is not None]
    if marks:
        axes.scatter([date2num(datetime.fromtimestamp(m.start, zone).replace(tzinfo=None)) for m in marks],
                     [m.supply_cents for m in marks], s=[6 + 1.2 * m.energy_kwh for m in marks], color=COST,
                     alpha=0.65, edgecolors="none", label="sessions (supply price)")
    if not trend.days and not marks:
        axes.text(0.5, 0.5, "no prices and no sessions in this period", transform=axes.transAxes, ha="center")
    start = datetime.fromisoformat(report.period.first_day)
    end = datetime.fromisoformat(report.period.last_day + "T23:59")
    axes.set_xlim(date2num(start), date2num(end))
    axes.xaxis.set_major_formatter(DateFormatter("%d" if report.period.kind == "month" else "%b"))
    axes.xaxis.set_major_locator(MonthLocator() if report.period.kind == "year" else DayLocator(interval=2))
    axes.tick_params(axis="x", labelsize=8)
    axes.set_ylabel("¢/kWh")
    if trend.days or marks:
        axes.legend(loc="upper left", fontsize=8, frameon=False, ncol=2)
    return _png(figure)


def render_charts(report: Report) -> dict[str, bytes]:
    """Every chart of the report, keyed as reports.text.CHARTS."""
    zone = ZoneInfo(report.zone)
    with _LOCK:
        return {"energy": energy_chart(report), "breakdown": breakdown_chart(report),
                "prices": price_chart(report, zone)}
