"""The reference tables of the documentation are generated from the code; this fails when one drifts,
whichever document (README.md, docs/*.md) holds it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from suite.reference import BLOCKS, ROOT, BlockError, blocks, documents, main, rewrite, rewrite_documents


def test_every_document_holding_a_reference_table_matches_the_code() -> None:
    stale = [str(path.relative_to(ROOT)) for path, (old, new) in rewrite_documents().items() if new != old]
    assert not stale, f"out of date: {', '.join(stale)}: run `python -m suite.reference --write`"


def test_every_block_is_in_exactly_one_document() -> None:
    where = {name: [path.relative_to(ROOT) for path in documents() if name in blocks(path.read_text())]
             for name in BLOCKS}
    assert all(len(paths) == 1 for paths in where.values()), where
    assert {name: str(paths[0]) for name, paths in where.items()} == {
        "config-reference": "docs/configuration.md",
        **{f"metrics-{name}": "docs/metrics.md"
           for name in ("twc", "fleet", "vehicle", "price", "sessions", "smart", "meter")}}


def copy_documents(root: Path) -> Path:
    (root / "docs").mkdir(parents=True)
    shutil.copy(ROOT / "README.md", root / "README.md")
    for page in (ROOT / "docs").glob("*.md"):
        shutil.copy(page, root / "docs" / page.name)
    return root


def test_a_drifted_table_is_found_and_rewritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_documents(tmp_path)
    metrics = root / "docs" / "metrics.md"
    original = metrics.read_text()
    metrics.write_text(original.replace("| `twc_power_watts` | gauge |", "| `twc_power_watts` | counter |"))
    assert main(["--check"], root) == 1
    assert "docs/metrics.md is out of date" in capsys.readouterr().err
    assert main(["--write"], root) == 0
    assert metrics.read_text() == original
    assert main(["--check"], root) == 0


def test_a_block_moves_to_whichever_document_holds_it(tmp_path: Path) -> None:
    root = copy_documents(tmp_path)
    configuration = root / "docs" / "configuration.md"
    text = configuration.read_text()
    start, end = text.index("<!-- config-reference:start -->"), text.index("<!-- config-reference:end -->")
    configuration.write_text(text[:start] + text[end + len("<!-- config-reference:end -->\n"):])
    with pytest.raises(BlockError, match="config-reference must be in exactly one .* found in no document"):
        rewrite_documents(root)
    (root / "docs" / "settings.md").write_text("# Settings\n\n<!-- config-reference:start -->\n<!-- config-reference:end -->\n")
    assert main(["--write"], root) == 0
    assert "| `general.log_level` | `LOG_LEVEL` |" in (root / "docs" / "settings.md").read_text()
    (root / "README.md").write_text((root / "README.md").read_text() + "\n<!-- metrics-twc:start -->\n<!-- metrics-twc:end -->\n")
    with pytest.raises(BlockError, match="metrics-twc must be in exactly one .* found in README.md, docs/metrics.md"):
        rewrite_documents(root)


@pytest.mark.parametrize("text, message", [
    ("<!-- metrics-nothing:start -->\n<!-- metrics-nothing:end -->\n", "unknown block"),
    ("<!-- metrics-twc:start -->\n| stale |\n", "never closed"),
    ("<!-- metrics-twc:end -->\n", "without its"),
    ("<!-- metrics-twc:start -->\n<!-- metrics-fleet:start -->\n", "inside the open block"),
])
def test_broken_markers_are_refused(text: str, message: str) -> None:
    with pytest.raises(BlockError, match=message):
        rewrite(text)


def test_write_given_files_rewrites_only_those(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n<!-- metrics-smart:start -->\nSTALE ROW\n<!-- metrics-smart:end -->\n")
    assert main(["--write", str(page)], tmp_path) == 0
    assert "`smart_charging_enabled`" in page.read_text() and "STALE ROW" not in page.read_text()
    assert main(["--write", str(tmp_path / "missing.md")], tmp_path) == 2
