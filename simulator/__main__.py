"""``charging-sim``: run the upstream simulator from a scenario file until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from simulator.app import DEFAULT_TOKEN, SimulatorServer
from simulator.scenario import ScenarioError, load_scenario


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"got {value!r}; use HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="charging-sim",
        description="Simulate the Tesla Wall Connector local API, Tessie (with the Fleet energy-site "
                    "passthrough) and the ComEd price feed from a YAML scenario, with fault injection "
                    "and a ground-truth endpoint (/sim/truth). The Tessie token comes from "
                    f"TESSIE_ACCESS_TOKEN (default: {DEFAULT_TOKEN}).")
    parser.add_argument("--scenario", required=True, help="scenario YAML file (e.g. simulator/scenarios/demo.yaml)")
    parser.add_argument("--listen", default="127.0.0.1:9880", metavar="HOST:PORT", type=_listen,
                        help="main listener for Tessie, Fleet, ComEd and /sim "
                             "(default %(default)s; port 0 = ephemeral)")
    parser.add_argument("--charger-port-base", type=int, default=9890, metavar="PORT",
                        help="charger i listens on PORT+i (default %(default)s; 0 = ephemeral)")
    parser.add_argument("--speed", type=float, default=None,
                        help="sim seconds per real second (default: the scenario's speed, else 1.0)")
    parser.add_argument("--port-file", type=Path, default=None,
                        help='write {"url": ..., "chargers": {name: url}, "dins": {name: DIN}, "home": [lat, lon]} '
                             'here once listening (dins: every charger, followers too; home: where the '
                             'first car is parked, or null)')
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return parser.parse_args(argv)


def write_port_file(path: Path, payload: dict[str, object]) -> None:
    """Atomic: readers polling for the file never see it half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle)
    os.replace(tmp, path)


async def run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    host, port = args.listen
    token = os.environ.get("TESSIE_ACCESS_TOKEN") or DEFAULT_TOKEN
    sim = SimulatorServer(scenario, host=host, port=port, charger_port_base=args.charger_port_base, token=token,
                          speed=args.speed, access_log=args.log_level == "debug")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):   # SIGHUP: the terminal closed
        loop.add_signal_handler(sig, stop.set)
    await sim.start()
    try:
        if args.port_file:
            home = next(([v.latitude, v.longitude] for v in scenario.vehicles), None)
            write_port_file(args.port_file, {"url": sim.url, "chargers": sim.charger_urls,
                                             "dins": {c.name: c.din for c in scenario.chargers}, "home": home})
        await stop.wait()
        logging.getLogger("simulator").info("shutting down")
    finally:
        await sim.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return asyncio.run(run(args))
    except ScenarioError as exc:
        print(f"charging-sim: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"charging-sim: cannot listen: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
