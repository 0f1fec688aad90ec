"""The report as text blocks, shared by the HTML, the PDF and the CLI's summary (pure).

Every figure is formatted here once, so the HTML and the PDF show the same strings, and tests can
format the JSON report's numbers the same way to find them in either.
"""
from __future__ import annotations

from dataclasses import dataclass

from reports.model import GroupRow, Report, SessionRow

CHARTS = ("energy", "breakdown", "prices")


def money(dollars: float | None) -> str:
    if dollars is None:
        return "n/a"
    return f"-${-dollars:,.2f}" if dollars < -0.004999 else f"${abs(dollars):,.2f}"


def kwh(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} kWh"


def cents(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ¢/kWh"


def percent(ratio: float | None, signed: bool = False) -> str:
    if ratio is None:
        return "n/a"
    value = round(ratio * 100, 1) + 0.0     # no "-0.0 %"
    return f"{value:+.1f} %" if signed else f"{value:.1f} %"


@dataclass(frozen=True)
class Facts:
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    numeric_from: int = 1         # columns from this one on are right-aligned numbers


@dataclass(frozen=True)
class Chart:
    key: str                      # one of CHARTS
    caption: str


@dataclass(frozen=True)
class Paragraph:
    text: str


Block = Facts | Table | Chart | Paragraph


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


def _group_table(rows: tuple[GroupRow, ...], what: str) -> Table:
    return Table((what, "sessions", "energy", "cost", "all-in price"),
                 tuple((r.name, str(r.sessions), kwh(r.energy_kwh), money(r.cost), cents(r.cents_per_kwh))
                       for r in rows))


def _session_table(rows: tuple[SessionRow, ...], caption: str) -> Table:
    return Table(("started", "vehicle", "unit", "energy", "cost", "all-in price"),
                 tuple((r.start_text, r.vehicle, r.unit, kwh(r.energy_kwh), money(r.cost),
                        cents(r.cents_per_kwh) + ("" if r.final else " (provisional)")) for r in rows),
                 caption, numeric_from=3)


def headline(report: Report) -> Facts:
    t = report.totals
    months = f"{t.months_charged} month{'s' * (t.months_charged != 1)}"
    rows = [("sessions", str(t.sessions)), ("energy charged", kwh(t.energy_kwh)),
            ("charging cost (supply + delivery)", money(t.charging)),
            (f"monthly charges ({months}: fixed + capacity)", money(t.fixed + t.capacity)),
            ("total on the bill", money(t.total)),
            ("charging price, all-in", cents(t.charging_cents_per_kwh))]
    if report.fixed_rate.available:
        rows.append(("saved against the fixed rate", money(report.fixed_rate.savings)))
    if report.smart.available:
        rows.append(("saved by smart charging and planning", money(report.smart.total)))
    if report.ev_share.available:
        rows.append(("EV share of the home's energy", percent(report.ev_share.share)))
    return Facts(tuple(rows))


def sections(report: Report) -> tuple[Section, ...]:
    t, per = report.totals, report.bar_unit
    out = [Section("Summary", (headline(report),))]
    bar_rows = tuple((b.key, str(b.sessions), kwh(b.energy_kwh), money(b.cost),
                      "n/a" if b.home_kwh is None else kwh(b.home_kwh)) for b in report.bars)
    out.append(Section(f"Energy and cost per {per}", (
        Chart("energy", f"Charging energy per {per} (bars) and its cost (line)"
                        + ("; the home's metered energy in grey" if report.ev_share.available else "")),
        Table((per, "sessions", "energy", "charging cost", "home (meter)"), bar_rows))))
    out.append(Section("Cost breakdown", (
        Chart("breakdown", "Where the money went"),
        Table(("part", "dollars", "share of total"),
              tuple((p.name, money(p.dollars), percent(p.dollars / t.total if t.total else None))
                    for p in report.breakdown) + (("total", money(t.total), percent(1.0 if t.total else None)),)),
        Paragraph(f"Fixed: {money(t.fixed / t.months_charged if t.months_charged else 0.0)} a month; capacity: "
                  f"{money(t.capacity / t.months_charged if t.months_charged else 0.0)} a month, for "
                  f"{t.months_charged} month(s) of the period."))))
    trend = report.price_trend
    trend_blocks: list[Block] = [Chart("prices", "Mean billed hourly supply price per day (line) and each "
                                                 "session's supply price (dots, sized by energy)")]
    trend_blocks.append(Facts((("mean billed hourly price", cents(trend.mean_cents)),
                               ("supply price the charging paid", cents(trend.paid_supply_cents)))))
    if trend.note:
        trend_blocks.append(Paragraph(f"Price trend: {trend.note}."))
    out.append(Section("Price trend", tuple(trend_blocks)))
    out.append(Section("Vehicles and units", (_group_table(report.vehicles, "vehicle"),
                                              _group_table(report.units, "unit"))))
    out.append(Section("Best and worst sessions", (
        _session_table(report.best, "Cheapest 5 sessions by all-in price (supply + delivery per kWh)"),
        _session_table(report.worst, "Dearest 5 sessions by all-in price"),
        Paragraph("Sessions under 1 kWh are not ranked."))))
    fixed = report.fixed_rate
    if fixed.available:
        out.append(Section("Savings against the fixed rate", (
            Facts((("reference supply price", cents(fixed.reference_supply_cents)),
                   ("the same energy on the fixed rate (bill)", money(fixed.reference_bill)),
                   ("this bill", money(t.total)),
                   ("sessions: reference cost - cost", money(fixed.sessions_savings)),
                   ("capacity charge (a fixed-rate bill has none)", money(fixed.capacity_difference)),
                   ("saved", money(fixed.savings)))),
            *((Paragraph(fixed.note + "."),) if fixed.note else ()))))
    else:
        out.append(Section("Savings against the fixed rate", (Paragraph(fixed.note + "."),)))
    out.append(_smart_section(report))
    out.append(_away_section(report))
    out.append(_ev_section(report))
    if report.notes:
        out.append(Section("Notes", tuple(Paragraph(n + ".") for n in report.notes)))
    return tuple(out)


def _smart_section(report: Report) -> Section:
    smart = report.smart
    blocks: list[Block] = []
    if smart.available:
        blocks.append(Facts((("saved by smart charging", money(smart.smart_charging)),
                             ("saved by the departure planner", money(smart.planner)),
                             ("saved in all", money(smart.total)),
                             ("paused plug-ins", str(len(smart.shifted))))))
    if smart.note:
        blocks.append(Paragraph(f"Smart charging savings: {smart.note}."))
    if smart.shifted:
        blocks.append(Table(("plug-in", "vehicle", "by", "energy", "cost", "charge now", "saved"),
                            tuple((s.plug_in_text, s.vehicle, s.by, kwh(s.energy_kwh), money(s.actual),
                                   money(s.charge_now), money(s.saved)) for s in smart.shifted),
                            "Each paused plug-in against charging it at once (peak power, from plug-in)",
                            numeric_from=3))
    plans = smart.plans
    if plans.departures:
        blocks.append(Facts((("departures planned", str(plans.departures)), ("targets met", str(plans.met)),
                             ("cost first planned", money(plans.planned_cost)), ("cost paid", money(plans.cost)))))
    return Section("What smart charging and planning saved", tuple(blocks))


def _away_section(report: Report) -> Section:
    away = report.away
    facts = [("charges away from home", str(away.charges)), ("energy added away", kwh(away.energy_kwh)),
             ("cost away (as Tessie reports it)", money(away.cost))]
    if away.efficiency is not None:
        facts.append(("home charging efficiency (battery / wall)", percent(away.efficiency)))
    blocks: list[Block] = [Facts(tuple(facts))]
    if away.rows:
        blocks.append(Table(("started", "vehicle", "where", "energy added", "cost"),
                            tuple((r.start_text, r.vehicle, r.location + (" (Supercharger)" if r.supercharger else ""),
                                   kwh(r.energy_kwh), money(r.cost)) for r in away.rows),
                            "The cars' own charge history: charging no Wall Connector saw", numeric_from=3))
    blocks.append(Paragraph("Away charging is not on the home's bill, so it is outside every total above."))
    return Section("Away from home", tuple(blocks))


def _ev_section(report: Report) -> Section:
    ev = report.ev_share
    if not ev.available:
        return Section("EV share of the home's bill", (Paragraph(ev.note),))
    blocks: list[Block] = [Facts((
        ("home energy (meter)", kwh(ev.home_kwh)), ("EV energy", kwh(ev.ev_kwh)),
        ("EV share", percent(ev.share)), ("the utility's cost of the home's energy", money(ev.home_cost)),
        ("EV cost, the utility's", money(ev.ev_cost_utility)), ("EV cost, ours", money(ev.ev_cost_computed)),
        ("ours against the utility's", percent(ev.discrepancy, signed=True)),
        ("days with reads", str(ev.meter_days)), ("reads corrected by the utility", str(ev.corrected_reads))))]
    if len(ev.rows) > 1:
        blocks.append(Table(("month", "home", "EV", "share", "EV cost (utility)", "EV cost (ours)"),
                            tuple((r.label, kwh(r.home_kwh), kwh(r.ev_kwh), percent(r.share),
                                   money(r.ev_cost_utility), money(r.ev_cost_computed)) for r in ev.rows)))
    if ev.bills:
        blocks.append(Table(("period", "bill date", "energy", "amount", "kind"),
                            tuple((f"{b.first_day} to {b.last_day}", b.bill_date, kwh(b.kwh), money(b.amount),
                                   "estimate" if b.estimated else "issued") for b in ev.bills),
                            "The utility's bills of the period", numeric_from=2))
    if ev.note:
        blocks.append(Paragraph(ev.note + "."))
    for hint in ev.hints:
        blocks.append(Paragraph("To tune: " + hint + "."))
    return Section("EV share of the home's bill", tuple(blocks))


def summary(report: Report) -> str:
    """A few lines for the terminal."""
    lines = [f"Charging report {report.period.title} ({report.zone})"]
    width = max(len(label) for label, _ in headline(report).rows)
    lines += [f"  {label:<{width}}  {value}" for label, value in headline(report).rows]
    if report.best:
        lines.append(f"  {'cheapest session':<{width}}  {cents(report.best[0].cents_per_kwh)} "
                     f"({report.best[0].start_text}, {report.best[0].vehicle})")
        lines.append(f"  {'dearest session':<{width}}  {cents(report.worst[0].cents_per_kwh)} "
                     f"({report.worst[0].start_text}, {report.worst[0].vehicle})")
    for note in (report.smart.note if not report.smart.available else "", report.ev_share.note
                 if not report.ev_share.available else ""):
        if note:
            lines.append(f"  {note.rstrip('.')}")
    return "\n".join(lines)
