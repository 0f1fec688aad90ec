"""Process lifecycle shared by every exporter: command line, config, logging, serve, clean SIGTERM."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from servicekit.collector import SnapshotCollector, Target
from servicekit.config import Config, ConfigError, Listen, default_config_path, load_files
from servicekit.exposition import Exposition, share_gil_with_scrapes
from servicekit.incremental import IncrementalRenderer, TrackingRegistry
from servicekit.logs import setup_logging
from servicekit.server import metrics_app
from servicekit.settings_types import Address


def argument_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", default=default_config_path(),
                        help="YAML configuration (see config.example.yaml); default $CHARGING_CONFIG, else "
                             "./config.yaml when present (as charging-suite), else built-in defaults plus "
                             "environment variables")
    parser.add_argument("--secrets", default=None,
                        help="KEY=VALUE secrets file (TESSIE_ACCESS_TOKEN); default ./.secrets when present")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        help="overrides general.log_level / LOG_LEVEL")
    parser.add_argument("--listen", help="host:port to serve on; overrides the configured listen address")
    parser.add_argument("--site", help="the site (of sites: in the configuration) to serve; default "
                                       "$CHARGING_SITE, else the first")
    return parser


def load_config_or_exit(prog: str, args: argparse.Namespace) -> Config:
    """Load the configuration; on any error print one line and exit with status 2."""
    try:
        return load_files(args.config, args.secrets, os.environ, getattr(args, "site", None))
    except ConfigError as error:
        print(f"{prog}: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


NO_CONFIG_HINT = ("no configuration file (no --config, $CHARGING_CONFIG or ./config.yaml): built-in defaults and "
                  "environment variables only; pass --config FILE (see config.example.yaml) or run in the directory "
                  "holding config.yaml")


def log_config_source(log: logging.Logger, config_path: str | None) -> None:
    """One line saying which file configured this process, or how to give it one."""
    if config_path:
        log.info("configuration from %s", config_path)
    else:
        log.info(NO_CONFIG_HINT)


def parse_listen_or_exit(prog: str, text: str | None, default: Listen) -> Listen:
    if not text:
        return default
    try:
        return Address().parse("--listen", text)
    except ConfigError as error:
        print(f"{prog}: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


@dataclass
class PartsContext:
    """What an exporter's parts are made with: the HTTP session, its registry, and hooks into the runtime."""

    session: aiohttp.ClientSession
    registry: CollectorRegistry
    on_update: Callable[[], None]
    spawn: Callable[[Target], None]


@dataclass
class ExporterParts:
    """An exporter's parts: the live list of targets (it may grow through `spawn`) and its collector."""

    targets: list[Target]
    collector: SnapshotCollector


PartsFactory = Callable[[PartsContext], ExporterParts]


async def serve(name: str, description: str, listen: Listen, make_parts: PartsFactory, log: logging.Logger,
                stop: asyncio.Event | None = None, ready: Callable[[int], None] | None = None) -> None:
    """Run pollers, the renderer and the HTTP server until `stop` is set (SIGTERM/SIGINT by default)."""
    stop = stop or _stop_on_signals()
    share_gil_with_scrapes()
    registry = TrackingRegistry()
    # each target re-rendered only when its snapshots, freshness or health changed (servicekit/incremental.py)
    exposition = Exposition(renderer=IncrementalRenderer(registry))
    tasks: list[asyncio.Task[None]] = []
    parts: ExporterParts | None = None

    def start_polling(target: Target) -> None:
        tasks.extend(asyncio.create_task(p.run(), name=p.name) for p in target.pollers.values())

    def spawn(target: Target) -> None:
        """A target discovered at run time (a vehicle, a unit): watched and polled from now on."""
        assert parts is not None
        parts.targets.append(target)
        start_polling(target)
        exposition.mark_dirty()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        parts = make_parts(PartsContext(session, registry, exposition.mark_dirty, spawn))
        exposition.valid_until = parts.collector.valid_until
        exposition.render_now()
        app = metrics_app(name, description, exposition, lambda: parts.targets)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, listen.host, listen.port, reuse_address=True)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else listen.port
        log.info("serving /metrics on http://%s:%d/metrics with %d targets", listen.host, port, len(parts.targets))
        if ready:
            ready(port)
        for target in list(parts.targets):
            start_polling(target)
        tasks.append(asyncio.create_task(exposition.run(), name="render"))
        try:
            await stop.wait()
        finally:
            log.info("shutting down")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runner.cleanup()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):   # SIGHUP: the terminal closed
        loop.add_signal_handler(signum, stop.set)
    return stop


def run_exporter(prog: str, description: str, argv: Sequence[str] | None,
                 listen_of: Callable[[Config], Listen], parts_factory: Callable[[Config, logging.Logger], PartsFactory]) -> int:
    """The whole `main` of an exporter: parse, load config (exit 2 on error), log, serve until SIGTERM."""
    args = argument_parser(prog, description).parse_args(argv)
    config = load_config_or_exit(prog, args)
    listen = parse_listen_or_exit(prog, args.listen, listen_of(config))
    log = setup_logging(prog, args.log_level or config.general.log_level, config.secrets.all())
    log_config_source(log, args.config)
    try:
        make_parts = parts_factory(config, log)
    except ConfigError as error:
        print(f"{prog}: configuration error: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(prog, description, listen, make_parts, log))
    except OSError as error:
        log.error("cannot serve on %s: %s", listen, error.strerror or error)
        return 1
    return 0
