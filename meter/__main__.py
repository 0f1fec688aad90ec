"""charging-meter: the home's smart-meter data and bills from the utility's portal.

    charging-meter --setup     one-time interactive login (password and MFA code); stores what the
                               library needs to log in again, mode 0600, in meter.credential_file
    charging-meter --status    what is stored (no network)
    charging-meter --test      log in with the stored login now and show the account's newest read
    charging-meter             the running component: pulls, stores, publishes, serves /metrics
"""
from __future__ import annotations

import asyncio
import getpass
import logging
import sys
import time
from datetime import datetime, timedelta
from typing import Sequence

from billing.settings import tariff_for
from meter import credentials
from meter.client import UTILITIES, interactive_login, pull
from meter.metrics import PREFIX, families
from meter.sync import MeterSync
from servicekit.collector import SnapshotCollector, Target
from servicekit.config import Config
from servicekit.errors import UpstreamError
from servicekit.poller import Backoff, Poller
from servicekit.runtime import ExporterParts, PartsContext, PartsFactory, argument_parser, load_config_or_exit, run_exporter
from session_store.storage import Storage
from upstreams.opower_route import session_for

PROG = "charging-meter"
DESCRIPTION = ("Smart-meter data and bills from the utility's Opower portal, reconciled with the charging sessions. "
               "--setup: log in once (password and MFA code; stores a refresh token, mode 0600); --status: what is "
               "stored; --test: log in now and show the newest reads; none of them: the running component.")
TICK_S = 60.0            # how often the component checks whether a pull is due (or the login file changed)


def parts_factory(config: Config, log: logging.Logger) -> PartsFactory:
    # the library logs whole answers below INFO; the login's are never wanted in a log
    logging.getLogger("opower").setLevel(max(logging.INFO, log.getEffectiveLevel()))

    def make_parts(ctx: PartsContext) -> ExporterParts:
        storage = Storage(config.sessions.database, tariff_for(config).zone)
        sync = MeterSync(config, storage, tariff_for(config), log)
        target = Target("utility")
        target.add(Poller("utility", "portal", sync.fetch, min(TICK_S, config.meter.poll_interval),
                          timeout=config.meter.timeout * 4,
                          backoff=Backoff(maximum=1800.0, first=60.0), on_update=ctx.on_update, logger=log,
                          meanwhile="serving the stored meter data"))
        # the families read sync.view, which a failed pull also rebuilds (login state): part of the render's key
        collector = SnapshotCollector(PREFIX, [target], float("inf"), families(lambda: sync.view),
                                      version=lambda: sync.view)
        ctx.registry.register(collector)
        return ExporterParts([target], collector)
    return make_parts


def _ask(prompt: str, secret: bool = False) -> str:
    """One answer from the terminal (the password unechoed), or a line of standard input when piped."""
    if secret and sys.stdin.isatty():
        return getpass.getpass(prompt)
    print(prompt, end="", flush=True)
    return sys.stdin.readline().rstrip("\n")


async def setup(config: Config) -> int:
    path = config.meter.credential_file
    try:
        previous = credentials.load(path).username
    except credentials.CredentialError:
        previous = ""
    username = _ask(f"{UTILITIES[config.meter.utility]} username{f' [{previous}]' if previous else ''}: ").strip() or previous
    password = _ask("Password (not stored): ", secret=True)
    if not username or not password:
        print(f"{PROG}: a username and a password are needed", file=sys.stderr)
        return 2

    async def ask(prompt: str) -> str:
        return _ask(prompt)

    async def choose(options: dict[str, str]) -> str:
        keys = list(options)
        if len(keys) == 1:
            print(f"The code goes to: {options[keys[0]]} ({keys[0]})")
            return keys[0]
        for i, key in enumerate(keys, 1):
            print(f"  {i}. {key}: {options[key]}")
        answer = _ask(f"Where should the code go? [1-{len(keys)}]: ").strip() or "1"
        return keys[int(answer) - 1] if answer.isdigit() and 1 <= int(answer) <= len(keys) else keys[0]

    async with session_for(config.meter.base_url, config.meter.timeout) as session:
        try:
            login_data = await interactive_login(session, config.meter.utility, username, password, ask, choose)
        except Exception as error:   # wrong password or code, portal down: one line, nothing stored
            print(f"{PROG}: login failed ({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else 'no detail'}); "
                  "nothing was stored", file=sys.stderr)
            return 1
    credentials.save(path, credentials.Credential(config.meter.utility, username, login_data, time.time()))
    print(f"Stored the login in {path} (mode 0600). The running charging-meter picks it up within "
          f"{TICK_S * 5 / 60:g} minutes; check with: {PROG} --test")
    return 0


def status(config: Config) -> int:
    path = config.meter.credential_file
    try:
        credential = credentials.load(path)
    except credentials.CredentialError as error:
        print(f"{PROG}: {error}")
        return 1
    age = (time.time() - credential.saved_at) / 86400
    print(f"utility login for {credential.utility} ({credential.username}) stored in {path}, mode 0600, "
          f"refreshed {age:.1f} days ago")
    return 0


async def test(config: Config) -> int:
    """Log in now (saving the rotated token) and pull the last two days."""
    try:
        credential = credentials.load(config.meter.credential_file)
    except credentials.CredentialError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    zone = tariff_for(config).zone
    now = datetime.now(zone)
    async with session_for(config.meter.base_url, config.meter.timeout) as session:
        try:
            result = await pull(session, credential, now - timedelta(days=3), now)
        except UpstreamError as error:
            print(f"{PROG}: {error}", file=sys.stderr)
            return 1
    if result.login_data != credential.login_data:
        credentials.save(config.meter.credential_file, credentials.rotated(credential, result.login_data))
    newest = max((r.end for r in result.reads), default=None)
    print(f"login ok; {len(result.reads)} reads ({result.resolution}) over the last 3 days, newest ending "
          f"{datetime.fromtimestamp(newest, zone).isoformat() if newest else 'none yet'}; {len(result.bills)} bills")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    modes = [flag for flag in ("--setup", "--status", "--test") if flag in argv]
    if len(modes) > 1:
        print(f"{PROG}: choose one of --setup, --status, --test", file=sys.stderr)
        return 2
    if not modes:
        return run_exporter(PROG, DESCRIPTION, argv, lambda c: c.meter.listen, parts_factory)
    argv.remove(modes[0])
    args = argument_parser(PROG, DESCRIPTION).parse_args(argv)
    config = load_config_or_exit(PROG, args)
    logging.basicConfig(level=logging.WARNING)
    if modes[0] == "--status":
        return status(config)
    return asyncio.run(setup(config) if modes[0] == "--setup" else test(config))


if __name__ == "__main__":
    raise SystemExit(main())
