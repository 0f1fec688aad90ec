"""Write every dashboard to grafana/dashboards/<uid>.json, or check that the committed files are current.

    python -m grafana.generate            # (re)write the JSON
    python -m grafana.generate --check    # exit 1 naming every out-of-date or missing file

The JSON is deterministic: sorted keys, 2-space indent, a trailing newline, ids fixed in code.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from grafana.boards import DASHBOARDS

OUTPUT = Path(__file__).resolve().parent / "dashboards"


def render(board) -> str:
    return json.dumps(board.build(), cls=JSONEncoder, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    files: dict[str, str] = {}
    for make in DASHBOARDS:
        board = make()
        files[f"{board.uid}.json"] = render(board)
    return files


def out_of_date(directory: Path = OUTPUT) -> list[str]:
    """Files that differ from the generator's output, are missing, or are no longer generated."""
    files = rendered()
    stale = [name for name, text in files.items()
             if not (directory / name).is_file() or (directory / name).read_text(encoding="utf-8") != text]
    extra = [p.name for p in directory.glob("*.json") if p.name not in files] if directory.is_dir() else []
    return sorted(stale + extra)


def write(directory: Path = OUTPUT) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    files = rendered()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    for path in directory.glob("*.json"):
        if path.name not in files:
            path.unlink()
    return sorted(files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grafana.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed dashboard is out of date")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"directory (default {OUTPUT})")
    args = parser.parse_args(argv)
    if args.check:
        stale = out_of_date(args.output)
        if stale:
            print(f"out of date: {', '.join(stale)}; run: python -m grafana.generate", file=sys.stderr)
            return 1
        print(f"{len(DASHBOARDS)} dashboards up to date")
        return 0
    written = write(args.output)
    print(f"wrote {len(written)} dashboards to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
