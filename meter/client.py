"""The utility's portal through the maintained `opower` library: log in from the stored login, pull reads
and bills, and turn the library's answers and failures into this suite's records and error classes.

The library does the login flow (ComEd: Azure B2C with MFA, then refresh tokens) and the portal's wire
format; nothing here speaks either. It takes our aiohttp session, which `upstreams.opower_route` points
at the simulator in demo mode and tests.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from opower import AggregateType, InvalidAuth, MeterType, MfaChallenge, Opower, ReadResolution, UnitOfMeasure
from opower.exceptions import ApiException, CannotConnect

from meter.credentials import SETUP_COMMAND, Credential
from servicekit.errors import AuthFailed, BadPayload, ServerError, Timeout, Unreachable, UpstreamError
from session_store.meter_records import Bill, MeterRead

UTILITIES = {"comed": "ComEd"}     # our setting -> the library's name
FINE = {ReadResolution.HALF_HOUR, ReadResolution.QUARTER_HOUR, ReadResolution.FIVE_MINUTE}


class LoginExpired(AuthFailed):
    """The stored login was refused: only the interactive set-up can make a new one."""

    outcome = "login_expired"


@dataclass(frozen=True)
class Pull:
    """One pull: reads over the asked range, the bills the portal lists, the bill in progress, and the
    login data to store (the library rotates the refresh token at every login)."""

    reads: tuple[MeterRead, ...]
    bills: tuple[Bill, ...]
    resolution: str
    login_data: dict[str, Any]


def expired_message(detail: str) -> str:
    return f"the utility refused the stored login ({detail}); run: {SETUP_COMMAND}"


def _classify(error: BaseException) -> UpstreamError:
    """The library's exceptions as this suite's upstream errors (short messages: no response bodies)."""
    if isinstance(error, UpstreamError):
        return error
    if isinstance(error, (MfaChallenge, InvalidAuth)):
        return LoginExpired(expired_message(type(error).__name__))
    if isinstance(error, ApiException):
        status = error.status
        if status in (401, 403):
            return AuthFailed(f"portal answered {status}")
        if status is not None and status >= 500:
            return ServerError(f"portal answered {status}")
        if status is None:
            return Unreachable(f"portal unreachable: {str(error).splitlines()[0]}")
        return BadPayload(f"portal answered {status}")
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        return Timeout("portal: no answer in time")
    if isinstance(error, CannotConnect):
        return Unreachable(f"portal unreachable: {str(error).splitlines()[0][:200]}")
    if isinstance(error, aiohttp.ClientResponseError):
        return ServerError(f"portal answered {error.status}") if error.status >= 500 else BadPayload(
            f"portal answered {error.status}")
    if isinstance(error, aiohttp.ClientError):
        return Unreachable(f"portal unreachable: {type(error).__name__}")
    return BadPayload(f"unexpected answer from the portal ({type(error).__name__}: {str(error)[:200]})")


def rotated_login_data(client: Opower, login_data: dict[str, Any]) -> dict[str, Any]:
    """The login data with the refresh token the library holds after logging in. The library keeps the
    rotated token on its Exelon handler and does not return it (Home Assistant keeps the first one until it
    expires); reading it keeps the stored login alive as long as the suite pulls. If a new library version
    moves it, the stored token is kept as it was and lasts its own lifetime."""
    handler = getattr(client.utility, "_exelon_handler", None)
    token = getattr(handler, "_refresh_token", None)
    if isinstance(token, str) and token and token != login_data.get("token"):
        return {**login_data, "token": token}
    return login_data


def aggregate_for(resolution: ReadResolution | None) -> AggregateType:
    if resolution in FINE:
        return AggregateType.HALF_HOUR
    if resolution == ReadResolution.HOUR:
        return AggregateType.HOUR
    return AggregateType.DAY


def _read(read: Any) -> MeterRead:
    # The library falls back to the usage-only endpoint when the cost endpoint fails, and reports those
    # reads with a cost of 0: energy without a cost is "no cost", never a free kWh.
    cost = float(read.provided_cost)
    return MeterRead(start=read.start_time.timestamp(), end=read.end_time.timestamp(), kwh=float(read.consumption),
                     cost=None if cost == 0 and read.consumption > 0 else cost)


def _bill(bill: Any) -> Bill:
    kwh = sum(q.value or 0.0 for s in bill.segments for q in s.service_quantities
              if q.unit_of_measure in (UnitOfMeasure.KWH, None))
    amount = sum(s.current_amount or 0.0 for s in bill.segments)
    return Bill(start=bill.start_time.timestamp(), end=bill.end_time.timestamp(), bill_date=bill.bill_date.isoformat(),
                kwh=kwh, amount=amount, usage_charges=bill.usage_charges, estimated=False)


def _estimate(forecast: Any, zone: Any) -> Bill:
    start = datetime.combine(forecast.start_date, datetime.min.time(), zone).timestamp()
    end = datetime.combine(forecast.end_date, datetime.min.time(), zone).timestamp()
    return Bill(start=start, end=end, bill_date=forecast.current_date.isoformat(), kwh=forecast.usage_to_date,
                amount=forecast.cost_to_date, usage_charges=forecast.cost_to_date, estimated=True)


async def login(session: aiohttp.ClientSession, credential: Credential) -> Opower:
    """Log in from the stored login (no MFA); LoginExpired when it is refused."""
    client = Opower(session, UTILITIES[credential.utility], credential.username, "", login_data=credential.login_data)
    try:
        await client.async_login()
    except BaseException as error:
        if isinstance(error, asyncio.CancelledError):
            raise
        raise _classify(error) from None
    return client


async def pull(session: aiohttp.ClientSession, credential: Credential, since: datetime, until: datetime) -> Pull:
    """Reads from `since` to `until` (local dates, inclusive) at the account's finest resolution, the bills,
    and the bill in progress."""
    client = await login(session, credential)
    try:
        accounts = [a for a in await client.async_get_accounts() if a.meter_type == MeterType.ELEC]
        if not accounts:
            raise BadPayload("the portal lists no electricity account")
        account = accounts[0]
        aggregate = aggregate_for(account.read_resolution)
        reads = tuple(_read(r) for r in await client.async_get_cost_reads(account, aggregate, since, until))
        bills = [_bill(b) for b in await client.async_get_bills() if any(s.account.uuid == account.uuid
                                                                          for s in b.segments)]
        bills += [_estimate(f, since.tzinfo) for f in await client.async_get_forecast()
                  if f.account.uuid == account.uuid]
    except BaseException as error:
        if isinstance(error, asyncio.CancelledError):
            raise
        raise _classify(error) from None
    return Pull(reads=reads, bills=tuple(bills), resolution=aggregate.value,
                login_data=rotated_login_data(client, credential.login_data))


Ask = Callable[[str], Awaitable[str]]


async def interactive_login(session: aiohttp.ClientSession, utility: str, username: str, password: str,
                            ask: Ask, choose: Callable[[dict[str, str]], Awaitable[str]]) -> dict[str, Any]:
    """The one-time set-up: log in with the password, let the user pick where the MFA code goes and type it;
    returns the login data to store. InvalidAuth (wrong password or code) and CannotConnect pass through."""
    client = Opower(session, UTILITIES[utility], username, password)
    try:
        await client.async_login()
    except MfaChallenge as challenge:
        handler = challenge.handler
        options = await handler.async_get_mfa_options()
        await handler.async_select_mfa_option(await choose(options) if options else "")
        code = (await ask("MFA code (sent by the utility): ")).strip()
        return dict(await handler.async_submit_mfa_code(code))
    return rotated_login_data(client, {})
