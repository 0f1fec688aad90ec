"""Reference tables in the documentation, generated from the code so they cannot drift.

Each table sits between `<!-- name:start -->` and `<!-- name:end -->` lines in one of the documents
(README.md and docs/*.md; today docs/configuration.md and docs/metrics.md), wherever it was put.
`python -m suite.reference --write` rewrites every block in every document, `--check` exits 1
naming the documents that are out of date, and a test fails the same way.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

from servicekit.collector import health_reference
from servicekit.config import reference_rows
from servicekit.upstream import UpstreamMetrics


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(str(c)) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def config_reference() -> str:
    return _table(("key", "environment", "default", "meaning"),
                  ((f"`{k}`", f"`{e}`" if e else "", f"`{d}`" if d else "", m) for k, e, d, m in reference_rows()))


def exporter_rows(exporter: str) -> list[tuple[str, str, str, str]]:
    """(name, type, labels, help) of everything one exporter serves: health, upstream requests, its table."""
    module = importlib.import_module(f"exporters.{exporter}")
    prefix = getattr(module, "HEALTH_PREFIX", getattr(module, "PREFIX", ""))
    return health_reference(prefix) + UpstreamMetrics.reference(prefix, module.UPSTREAM) + module.metric_reference()


def metrics_reference(exporter: str) -> Callable[[], str]:
    """The table of one exporter: its health metrics, then its metric table."""
    def make() -> str:
        return _table(("metric", "type", "labels", "meaning"), ((f"`{n}`", t, l, h) for n, t, l, h in
                                                                  exporter_rows(exporter)))
    return make


def sessions_reference() -> str:
    from session_store.metrics import REFERENCE
    return _table(("metric", "type", "labels", "meaning"), ((f"`{n}`", t, l, h) for n, t, l, h in REFERENCE))


def smart_reference() -> str:
    from session_store.smart_metrics import REFERENCE
    return _table(("metric", "type", "labels", "meaning"), ((f"`{n}`", t, l, h) for n, t, l, h in REFERENCE))


def meter_rows() -> list[tuple[str, str, str, str]]:
    """charging-meter's /metrics (health, then its table) and the series it writes into the TSDB."""
    from meter.metrics import PREFIX, reference
    from meter.publish import SERIES_HELP
    return health_reference(PREFIX) + reference() + [
        (name, "gauge (TSDB blocks)", "utility" + (", source" if "ev_cost" in name else ""), text)
        for name, text in SERIES_HELP.items()]


def meter_reference() -> str:
    return _table(("metric", "type", "labels", "meaning"), ((f"`{n}`", t, l, h) for n, t, l, h in meter_rows()))


BLOCKS: dict[str, Callable[[], str]] = {
    "config-reference": config_reference,
    "metrics-meter": meter_reference,
    "metrics-smart": smart_reference,
    "metrics-sessions": sessions_reference,
    **{f"metrics-{name}": metrics_reference(name) for name in ("twc", "fleet", "vehicle", "price")},
}


ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- ([A-Za-z0-9_-]+):(start|end) -->$", re.M)


class BlockError(ValueError):
    """A document's markers are wrong: an unknown or unclosed block, or a block missing or twice."""


def documents(root: Path = ROOT) -> list[Path]:
    """Where generated blocks may sit: README.md and every page in docs/."""
    return [path for path in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if path.is_file()]


def blocks(text: str, where: str = "the text") -> list[str]:
    """The names of the blocks `text` holds, in order; BlockError if a marker is unknown or unpaired."""
    names, open_name = [], None
    for match in MARKER.finditer(text):
        name, side = match.groups()
        if name not in BLOCKS:
            raise BlockError(f"{where}: unknown block <!-- {name}:{side} -->; known: {', '.join(BLOCKS)}")
        if side == "start":
            if open_name:
                raise BlockError(f"{where}: <!-- {name}:start --> inside the open block {open_name}")
            open_name = name
        else:
            if open_name != name:
                raise BlockError(f"{where}: <!-- {name}:end --> without its <!-- {name}:start -->")
            names.append(name)
            open_name = None
    if open_name:
        raise BlockError(f"{where}: <!-- {open_name}:start --> is never closed")
    return names


def rewrite(text: str, where: str = "the text") -> str:
    """`text` with every generated block it holds rewritten from the code."""
    for name in blocks(text, where):
        pattern = re.compile(rf"(^<!-- {name}:start -->\n).*?(^<!-- {name}:end -->$)", re.S | re.M)
        text = pattern.sub(lambda m, make=BLOCKS[name]: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def rewrite_documents(root: Path = ROOT, paths: Sequence[Path] | None = None) -> dict[Path, tuple[str, str]]:
    """{document: (its text, its text rewritten)} for every document holding blocks. Without `paths`
    (README.md and docs/*.md) every block must appear exactly once across them."""
    found: dict[str, list[Path]] = {}
    result = {}
    for path in paths if paths is not None else documents(root):
        text = path.read_text()
        names = blocks(text, str(path))
        for name in names:
            found.setdefault(name, []).append(path)
        if names:
            result[path] = (text, rewrite(text, str(path)))
    if paths is None:
        for name in BLOCKS:
            where = found.get(name, [])
            if len(where) != 1:
                held = ", ".join(str(p.relative_to(root)) for p in where) or "no document"
                raise BlockError(f"the block {name} must be in exactly one of README.md and docs/*.md, "
                                 f"found in {held}")
    return result


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m suite.reference", description=__doc__.split("\n\n")[0],
        epilog="Without options it prints every table.")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", nargs="*", metavar="FILE",
                        help="rewrite the generated blocks in place: in every document (README.md, docs/*.md), "
                             "or only in the FILEs given")
    action.add_argument("--check", action="store_true",
                        help="exit 1 naming the documents whose generated blocks are out of date")
    args = parser.parse_args(argv)
    try:
        if args.write is not None:
            paths = [Path(name) for name in args.write] or None
            for path, (old, new) in rewrite_documents(root, paths).items():
                if new != old:
                    path.write_text(new)
                    print(f"rewrote {path}")
        elif args.check:
            stale = [path for path, (old, new) in rewrite_documents(root).items() if new != old]
            for path in stale:
                print(f"{path} is out of date: run `python -m suite.reference --write`", file=sys.stderr)
            return 1 if stale else 0
        else:
            for name, make in BLOCKS.items():
                print(f"## {name}\n\n{make()}\n")
    except (BlockError, OSError) as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
