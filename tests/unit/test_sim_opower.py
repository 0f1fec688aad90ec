"""The utility meter upstream (simulator/upstreams/opower.py, b2c.py) driven by the REAL ``opower``
library through ``upstreams.opower_route``: ComEd's MFA login, refresh-token rotation, expiry and
revocation, reads equal to the truth at every resolution, the publication delay, corrections, a DST
day, bills, the forecast, and faults on the meter's endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from opower import AggregateType, CannotConnect, InvalidAuth, MfaChallenge, Opower

from simulator.testing import Harness, simulate
from upstreams.opower_route import session_for

TZ = ZoneInfo("America/Chicago")
RED = "5YJ3E1EA7KF000001"
USER, PASSWORD, CODE = "demo@example.com", "demo-password", "123456"
DAY = 86400
EXACT = 1e-9


def scenario(start: str, meter: dict[str, Any] | None = None, events: list[dict[str, Any]] | None = None
             ) -> dict[str, Any]:
    return {
        "start": start, "chargers": [{"name": "garage", "serial": "PGT00000000001"}],
        "vehicles": [{"vin": RED, "name": "red", "battery_kwh": 100, "soc": 10, "charge_limit": 100,
                      "max_power_kw": 7.2, "ramp": 0, "taper_pct": 0}],
        "events": events or [], "prices": {"history_days": 1}, "meter": {"history": "3d", **(meter or {})},
    }


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)


async def mfa_setup(session: Any, password: str = PASSWORD) -> dict[str, Any]:
    """The one-time interactive set-up: login, MFA by e-mail, the code -> login_data."""
    with pytest.raises(MfaChallenge) as challenge:
        await Opower(session, "ComEd", USER, password).async_login()
    handler = challenge.value.handler
    assert await handler.async_get_mfa_options() == {"Email": "d***@example.com"}
    await handler.async_select_mfa_option("Email")
    return await handler.async_submit_mfa_code(CODE)


async def login(session: Any, login_data: dict[str, Any]) -> Opower:
    client = Opower(session, "ComEd", USER, PASSWORD, login_data=login_data)
    await client.async_login()
    return client


@asynccontextmanager
async def meter(data: dict[str, Any]) -> AsyncIterator[tuple[Harness, Any, Opower]]:
    """A simulator, a routed session, and a client logged in through the full MFA flow."""
    async with simulate(data) as h, session_for(h.url) as session:
        yield h, session, await login(session, await mfa_setup(session))


async def truth(h: Harness, **query: str) -> dict[str, Any]:
    status, body = await h.get_json("/sim/meter", params=query, auth=False)
    assert status == 200, body
    return body


def by_day(reads: list[Any]) -> dict[str, tuple[float, float, int]]:
    """Local day -> (kWh, $, number of reads)."""
    days: dict[str, tuple[float, float, int]] = {}
    for r in reads:
        key = r.start_time.astimezone(TZ).date().isoformat()
        kwh, cost, n = days.get(key, (0.0, 0.0, 0))
        days[key] = (kwh + r.consumption, cost + r.provided_cost, n + 1)
    return days


def on_day(reads: list[Any], day: datetime) -> list[Any]:
    return [r for r in reads if r.start_time.astimezone(TZ).date() == day.date()]


# --- login ----------------------------------------------------------------------------------------


async def test_mfa_setup_then_login_from_stored_data_without_mfa() -> None:
    async with simulate(scenario("2026-11-05T12:00:00-06:00")) as h, session_for(h.url) as session:
        data = await mfa_setup(session)
        assert data["base_url"] == "secure1.comed.com/euazurecomed.onmicrosoft.com/B2C_1A_SignIn_Mobile"
        assert data["account"]["accountNumber"] == "0123456789" and data["token"]
        client = await login(session, data)
        account, = await client.async_get_accounts()
        assert (account.utility_account_id, account.meter_type.value, account.read_resolution.value) == (
            "0123456789", "ELEC", "HALF_HOUR")
        credentials = (await truth(h))["credentials"]
        assert credentials["refresh_tokens_issued"] == 4  # code + opower, then refresh + opower
        # Opower wants a bearer token; the control API wants none.
        status, _ = await h.get_json("/ei/edge/apis/multi-account-v1/cws/cec/customers", auth=False)
        assert status == 401


async def test_refresh_tokens_rotate_expire_and_can_be_revoked() -> None:
    async with simulate(scenario("2026-11-05T12:00:00-06:00")) as h, session_for(h.url) as session:
        first = await mfa_setup(session)
        h.advance(10 * DAY)
        client = await login(session, first)
        rotated = client.utility._exelon_handler._refresh_token  # the library keeps the rotated one here
        assert rotated and rotated != first["token"]
        h.advance(5 * DAY)  # 15 days: the first token is past its 14, the rotated one has 9 left
        with pytest.raises(MfaChallenge, match="Reauthentication required"):
            await login(session, first)
        await login(session, {**first, "token": rotated})
        status, body = await h.post_json("/sim/meter/revoke", auth=False)
        assert status == 200 and body["revoked"] >= 2
        with pytest.raises(MfaChallenge):
            await login(session, {**first, "token": rotated})
        assert (await truth(h))["credentials"]["refresh_tokens_valid"] == 0
        await login(session, await mfa_setup(session))  # a new set-up works again


async def test_wrong_password_and_wrong_code_are_invalid_auth() -> None:
    async with simulate(scenario("2026-11-05T12:00:00-06:00")) as h, session_for(h.url) as session:
        with pytest.raises(InvalidAuth, match="password is incorrect"):
            await Opower(session, "ComEd", USER, "wrong").async_login()
        with pytest.raises(MfaChallenge) as challenge:
            await Opower(session, "ComEd", USER, PASSWORD).async_login()
        handler = challenge.value.handler
        await handler.async_get_mfa_options()
        await handler.async_select_mfa_option("Email")
        with pytest.raises(InvalidAuth, match="does not match"):
            await handler.async_submit_mfa_code("000000")
        data = await handler.async_submit_mfa_code(CODE)  # the right code still works
        await login(session, data)


# --- reads ----------------------------------------------------------------------------------------

async def test_reads_equal_the_truth_at_every_resolution_with_the_ev_share() -> None:
    # Start 2026-11-05 12:00; the car charges at 7.2 kW from 19:00 to 22:00 that evening.
    events = [{"at": "7h", "vehicle": "red", "plug_in": "garage"}, {"at": "10h", "vehicle": "red", "unplug": True}]
    async with meter(scenario("2026-11-05T12:00:00-06:00", events=events)) as (h, session, _):
        h.advance(3 * DAY)  # 2026-11-08 12:00: published until 11-07 00:00
        client = await login(session, (await mfa_setup(session)))
        account, = await client.async_get_accounts()
        t = await truth(h)
        days = {d["day"]: d for d in t["days"] if d["complete"]}
        start, end = local(2026, 11, 2), local(2026, 11, 8)
        half = by_day(await client.async_get_cost_reads(account, AggregateType.HALF_HOUR, start, end))
        hour = by_day(await client.async_get_cost_reads(account, AggregateType.HOUR, start, end))
        day = by_day(await client.async_get_cost_reads(account, AggregateType.DAY, start, end))
        served = ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06"]
        assert sorted(half) == sorted(hour) == sorted(day) == served
        for key in served:
            for reads, count in ((half, 48), (hour, 24), (day, 1)):
                kwh, cost, n = reads[key]
                assert n == count
                assert kwh == pytest.approx(days[key]["home_kwh"], abs=EXACT)
                assert cost == pytest.approx(days[key]["home_cost"], abs=EXACT)
        ev_day = days["2026-11-05"]
        status, sim = await h.get_json("/sim/truth", auth=False)
        session_kwh = sim["sessions"][0]["energy_wh"] / 1000
        assert ev_day["ev_kwh"] == pytest.approx(session_kwh, abs=EXACT) and session_kwh == pytest.approx(21.6)
        assert ev_day["ev_share"] == pytest.approx(ev_day["ev_kwh"] / ev_day["home_kwh"], abs=EXACT)
        assert ev_day["home_kwh"] == pytest.approx(ev_day["base_kwh"] + ev_day["ev_kwh"], abs=EXACT)
        assert 0 < ev_day["ev_cost"] < ev_day["home_cost"]
        assert days["2026-11-04"]["ev_kwh"] == 0 and days["2026-11-04"]["ev_share"] == 0


async def test_reads_are_published_36_hours_late() -> None:
    async with meter(scenario("2026-11-05T12:10:00-06:00")) as (h, session, client):
        account, = await client.async_get_accounts()
        reads = await client.async_get_cost_reads(account, AggregateType.HALF_HOUR, local(2026, 11, 1),
                                                  local(2026, 11, 5))
        assert reads[0].start_time == local(2026, 11, 2)  # the history start (3 days before)
        assert reads[-1].end_time == local(2026, 11, 4)  # 11-05 12:10 - 36 h = 11-04 00:10
        h.advance(20 * 60)  # 12:30: the half hour ending 00:30 is out
        reads = await client.async_get_cost_reads(account, AggregateType.HALF_HOUR, local(2026, 11, 3),
                                                  local(2026, 11, 5))
        assert reads[-1].end_time == local(2026, 11, 4, 0, 30)
        days = await client.async_get_cost_reads(account, AggregateType.DAY, local(2026, 11, 1), local(2026, 11, 5))
        assert [r.start_time.date() for r in days] == [date(2026, 11, 2), date(2026, 11, 3)]


async def test_a_fall_back_day_has_50_half_hours() -> None:
    async with meter(scenario("2026-11-03T12:00:00-06:00")) as (h, session, client):
        account, = await client.async_get_accounts()
        day = local(2026, 11, 1)
        reads = await client.async_get_cost_reads(account, AggregateType.HALF_HOUR, day, day)
        assert len(reads) == 50
        assert [r.start_time.hour for r in reads[2:6]] == [1, 1, 1, 1]  # 01:00 and 01:30 CDT, then CST
        assert reads[3].start_time.utcoffset() != reads[4].start_time.utcoffset()
        hours = await client.async_get_cost_reads(account, AggregateType.HOUR, day, day)
        assert len(hours) == 25
        truth_day, = (await truth(h, start="2026-11-01", end="2026-11-01"))["days"]
        assert sum(r.consumption for r in reads) == pytest.approx(truth_day["home_kwh"], abs=EXACT)
        assert sum(r.provided_cost for r in hours) == pytest.approx(truth_day["home_cost"], abs=EXACT)


async def test_a_corrected_day_is_first_an_estimate_then_the_true_value() -> None:
    data = scenario("2026-11-04T13:00:00-06:00", meter={"corrections": [{"day": "2026-11-02", "factor": 0.9}]})
    async with meter(data) as (h, session, client):
        account, = await client.async_get_accounts()
        day = local(2026, 11, 2)
        true_day, = (await truth(h, start="2026-11-02", end="2026-11-02"))["days"]
        # A window includes the end date's next day (the library's convention): keep 11-02's reads.
        first = on_day(await client.async_get_cost_reads(account, AggregateType.HALF_HOUR, day, day), day)
        first_day, = on_day(await client.async_get_cost_reads(account, AggregateType.DAY, day, day), day)
        assert first_day.consumption == pytest.approx(0.9 * true_day["home_kwh"], abs=EXACT)
        assert first_day.provided_cost == pytest.approx(0.9 * true_day["home_cost"], abs=EXACT)
        h.advance(35 * 3600)  # 11-06 00:00 = the day's end + 72 h
        client = await login(session, await mfa_setup(session))
        later = on_day(await client.async_get_cost_reads(account, AggregateType.HALF_HOUR, day, day), day)
        later_day, = on_day(await client.async_get_cost_reads(account, AggregateType.DAY, day, day), day)
        assert later_day.consumption == pytest.approx(true_day["home_kwh"], abs=EXACT)
        assert later_day.provided_cost == pytest.approx(true_day["home_cost"], abs=EXACT)
        assert [(r.start_time, r.end_time) for r in first] == [(r.start_time, r.end_time) for r in later]
        assert len(first) == 48
        assert all(a.consumption == pytest.approx(0.9 * b.consumption, abs=EXACT) for a, b in zip(first, later))


# --- bills and forecast ---------------------------------------------------------------------------


async def test_bills_and_the_forecast_equal_the_truth() -> None:
    # 2026-12-04 12:00: November's bill is out (3 days after 12-01) and December runs. A preloaded
    # session (before the simulation) charged 14 kWh on 11-20.
    data = scenario("2026-12-04T12:00:00-06:00", meter={"history": "35d"})
    data["telemetry"] = {"history": [{"charger": "garage", "vehicle": "red", "start": "-14d", "duration": "2h",
                                      "energy_wh": 14000}]}
    async with meter(data) as (h, session, client):
        account, = await client.async_get_accounts()
        t = await truth(h)
        bill_truth, = t["bills"]
        bill, = await client.async_get_bills()
        assert bill.bill_date == date(2026, 12, 4)
        assert (bill.start_time, bill.end_time) == (local(2026, 11, 1), local(2026, 12, 1))
        assert bill.usage_charges == pytest.approx(bill_truth["energy_charges"], abs=EXACT)
        segment, = bill.segments
        assert segment.account.uuid == account.uuid
        assert segment.current_amount == pytest.approx(bill_truth["amount"], abs=EXACT)
        assert segment.service_quantities[0].value == pytest.approx(bill_truth["kwh"], abs=EXACT)
        assert bill_truth["amount"] == pytest.approx(bill_truth["energy_charges"] + 19.56, abs=EXACT)
        assert bill_truth["ev_kwh"] == pytest.approx(14.0, abs=EXACT)
        november = [d for d in t["days"] if d["day"].startswith("2026-11")]
        assert len(november) == 30
        assert sum(d["home_kwh"] for d in november) == pytest.approx(bill_truth["kwh"], abs=EXACT)
        assert sum(d["ev_cost"] for d in november) == pytest.approx(bill_truth["ev_cost"], abs=EXACT)
        bill_read, = await client.async_get_cost_reads(account, AggregateType.BILL)
        assert bill_read.consumption == pytest.approx(bill_truth["kwh"], abs=EXACT)
        assert bill_read.provided_cost == pytest.approx(bill_truth["energy_charges"], abs=EXACT)
        forecast, = await client.async_get_forecast()
        f = t["forecast"]
        assert (forecast.start_date, forecast.end_date, forecast.current_date) == (
            date(2026, 12, 1), date(2027, 1, 1), date(2026, 12, 4))
        assert forecast.usage_to_date == pytest.approx(f["so_far_kwh"], abs=EXACT)
        assert forecast.cost_to_date == pytest.approx(f["so_far_cost"], abs=EXACT)
        assert forecast.forecasted_usage == pytest.approx(f["estimated_kwh"], abs=EXACT)
        assert forecast.forecasted_cost == pytest.approx(f["estimated_cost"], abs=EXACT)
        december = [d for d in t["days"] if d["day"] == "2026-12-01"]
        assert f["so_far_kwh"] > december[0]["home_kwh"]  # 12-01 and half of 12-02 are out


# --- faults ---------------------------------------------------------------------------------------


async def inject(h: Harness, spec: dict[str, Any]) -> None:
    status, body = await h.post_json("/sim/faults", spec, auth=False)
    assert status == 201, body


async def test_faults_on_the_cost_endpoint() -> None:
    async with meter(scenario("2026-11-05T12:00:00-06:00")) as (h, session, client):
        account, = await client.async_get_accounts()
        day = local(2026, 11, 3)
        await inject(h, {"target": "opower/cost", "kind": "status", "status": 503, "count": 1})
        reads = await client.async_get_cost_reads(account, AggregateType.DAY, day, day)
        true_day, = (await truth(h, start="2026-11-03", end="2026-11-03"))["days"]
        # The library falls back to the usage-only endpoint: the kWh without cost.
        assert reads[0].consumption == pytest.approx(true_day["home_kwh"], abs=EXACT) and reads[0].provided_cost == 0
        await inject(h, {"target": "opower/cost", "kind": "malformed", "count": 1})
        with pytest.raises(ValueError):
            await client.async_get_cost_reads(account, AggregateType.DAY, day, day)
        async with session_for(h.url, timeout_s=0.3) as impatient:
            slow = await login(impatient, await mfa_setup(impatient))
            await inject(h, {"target": "opower/cost", "kind": "hang", "hold": "1s", "count": 1})
            with pytest.raises(asyncio.TimeoutError):
                await slow.async_get_cost_reads(account, AggregateType.DAY, day, day)


async def test_faults_on_the_token_endpoint() -> None:
    async with simulate(scenario("2026-11-05T12:00:00-06:00")) as h, session_for(h.url) as session:
        data = await mfa_setup(session)
        await inject(h, {"target": "opower/token", "kind": "status", "status": 503, "count": 1})
        with pytest.raises(CannotConnect):
            await login(session, data)
        await inject(h, {"target": "opower/token", "kind": "malformed", "count": 1})
        with pytest.raises(ValueError):
            await login(session, data)
        async with session_for(h.url, timeout_s=0.3) as impatient:
            await inject(h, {"target": "opower/token", "kind": "hang", "hold": "1s", "count": 1})
            with pytest.raises(asyncio.TimeoutError):
                await login(impatient, data)
        await login(session, data)  # the token survived all three


async def test_sim_meter_validates_its_dates_and_a_disabled_meter_is_absent() -> None:
    async with simulate(scenario("2026-11-05T12:00:00-06:00")) as h:
        status, _ = await h.get_json("/sim/meter", params={"start": "11/02/2026"}, auth=False)
        assert status == 400
        t = await truth(h, start="2026-11-03", end="2026-11-04")
        assert [d["day"] for d in t["days"]] == ["2026-11-03", "2026-11-04"]
        assert t["history_start"] == "2026-11-02T00:00:00-06:00"
    async with simulate(scenario("2026-11-05T12:00:00-06:00", meter={"enabled": False})) as h:
        status, _, _ = await h.request("GET", "/sim/meter", auth=False)
        assert status == 404
