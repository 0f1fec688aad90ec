"""The README's reference tables are generated from the code; this fails when they drift."""
from __future__ import annotations

from pathlib import Path

from suite.reference import rewrite

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_tables_match_the_code() -> None:
    text = README.read_text()
    assert rewrite(text) == text, "README is out of date: run `python -m suite.reference --write README.md`"
