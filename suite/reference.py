"""Reference tables in the README, generated from the code so they cannot drift.

`python -m suite.reference --write README.md` rewrites the marked blocks; a test fails when the
README differs from what the code declares.
"""
from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path
from typing import Callable, Iterable, Sequence

from servicekit.config import reference_rows


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(str(c)) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def config_reference() -> str:
    return _table(("key", "environment", "default", "meaning"),
                  ((f"`{k}`", f"`{e}`" if e else "", f"`{d}`" if d else "", m) for k, e, d, m in reference_rows()))


def health_rows(prefix: str) -> list[tuple[str, str, str, str]]:
    return [
        (f"{prefix}_up", "gauge", "target", "1 if the last poll of the target succeeded and its data is fresh, else 0."),
        (f"{prefix}_last_success_timestamp_seconds", "gauge", "target", "When the target was last polled successfully."),
        (f"{prefix}_upstream_requests_total", "counter", "endpoint, outcome",
         "Requests to the upstream by endpoint and outcome (success, timeout, unreachable, auth_failed, "
         "rate_limited, unavailable, server_error, client_error, bad_payload)."),
        (f"{prefix}_upstream_request_duration_seconds", "histogram", "endpoint", "Duration of upstream requests."),
    ]


def metrics_reference(exporter: str) -> Callable[[], str]:
    """The table of one exporter: its health metrics, then its metric table."""
    def make() -> str:
        module = importlib.import_module(f"exporters.{exporter}")
        prefix = getattr(module, "HEALTH_PREFIX", getattr(module, "PREFIX", ""))
        rows = health_rows(prefix) + module.metric_reference()
        return _table(("metric", "type", "labels", "meaning"), ((f"`{n}`", t, l, h) for n, t, l, h in rows))
    return make


def sessions_reference() -> str:
    from session_store.metrics import REFERENCE
    return _table(("metric", "type", "labels", "meaning"), ((f"`{n}`", t, l, h) for n, t, l, h in REFERENCE))


def smart_reference() -> str:
    from session_store.smart_metrics import REFERENCE
    return _table(("metric", "type", "labels", "meaning"), ((f"`{n}`", t, l, h) for n, t, l, h in REFERENCE))


BLOCKS: dict[str, Callable[[], str]] = {
    "config-reference": config_reference,
    "metrics-smart": smart_reference,
    "metrics-sessions": sessions_reference,
    **{f"metrics-{name}": metrics_reference(name) for name in ("twc", "fleet", "vehicle", "price")},
}


def rewrite(text: str) -> str:
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README lacks the <!-- {name}:start --> ... <!-- {name}:end --> block")
        text = pattern.sub(lambda m: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suite.reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", metavar="README", help="rewrite the generated blocks of this file in place")
    args = parser.parse_args(argv)
    if args.write:
        path = Path(args.write)
        path.write_text(rewrite(path.read_text()))
    else:
        for name, make in BLOCKS.items():
            print(f"## {name}\n\n{make()}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
