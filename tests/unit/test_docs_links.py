"""Every relative link of the documentation resolves: the file it names exists and, with `#anchor`,
that file has the heading (GitHub's slugs). External links are left alone: no network here."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             ROOT / "simulator" / "README.md", ROOT / "benchmarks" / "README.md"]

FENCE = re.compile(r"^ {0,3}(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target "title") and ![alt](target); the text may hold one level of brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:name|id)=\"([^\"]+)\"", re.I)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def outside_fences(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line not inside a fenced code block."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence:
            if match and match.group(1) == fence:
                fence = None
        elif match:
            fence = match.group(1)
        else:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text as rendered (code spans, links and emphasis reduced to
    their text, tags dropped), lowercase, punctuation dropped but for '-' and '_', spaces to hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = "".join(ch for ch in text.strip().lower() if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a Markdown file has: its headings' slugs (a repeated one gets -1, -2, ... as on
    GitHub) and explicit <a name=...> / id=... anchors."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in outside_fences(path.read_text()):
        if match := HEADING.match(line):
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(HTML_ANCHOR.findall(line))
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image of a Markdown file, code left out."""
    result = []
    for number, line in outside_fences(path.read_text()):
        line = CODE_SPAN.sub("", line)
        targets = [m.group(1) for m in INLINE_LINK.finditer(line)]
        if match := REFERENCE_DEFINITION.match(line):
            targets.append(match.group(1))
        result += [(number, target.strip("<>")) for target in targets]
    return result


def problems(path: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with the relative links of `path`, one line each."""
    found = []
    for number, target in links(path):
        if SCHEME.match(target) or target.startswith("//"):
            continue   # external: not checked here
        where = f"{path.relative_to(root)}:{number}: {target}"
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not resolved.is_relative_to(root):
            found.append(f"{where}: points outside the repository")
        elif not resolved.exists():
            found.append(f"{where}: no such file {resolved.relative_to(root)}")
        elif anchor and resolved.suffix == ".md":
            if unquote(anchor) not in anchors(resolved):
                found.append(f"{where}: {resolved.relative_to(root)} has no heading with the anchor #{anchor}")
        elif anchor and resolved.is_dir():
            found.append(f"{where}: a directory has no anchors")
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_names_an_existing_file_and_heading(document: Path) -> None:
    assert document.is_file()
    assert not problems(document), "\n".join(problems(document))


def test_every_docs_page_is_listed_in_the_index_and_the_readme_links_the_index() -> None:
    def targets(path: Path) -> set[Path]:
        return {(path.parent / unquote(t.partition("#")[0])).resolve()
                for _, t in links(path) if not SCHEME.match(t) and t.partition("#")[0]}
    index = ROOT / "docs" / "README.md"
    listed = targets(index)
    pages = {page.resolve() for page in (ROOT / "docs").glob("*.md")} - {index.resolve()}
    assert not pages - listed, f"docs/README.md does not list {sorted(p.name for p in pages - listed)}"
    readme = targets(ROOT / "README.md")
    assert index.resolve() in readme, "README.md does not link docs/README.md"
    assert not pages - readme, f"README.md does not link {sorted(p.name for p in pages - readme)}"


@pytest.mark.parametrize("heading, anchor", [
    ("Quick start", "quick-start"),
    ("What the demo shows", "what-the-demo-shows"),
    ("Wall Connector local API (`twc-exporter`, prefix `twc_`)", "wall-connector-local-api-twc-exporter-prefix-twc_"),
    ("ComEd's rule: each clock hour at the mean of its twelve prices",
     "comeds-rule-each-clock-hour-at-the-mean-of-its-twelve-prices"),
    ("The `interval` rule", "the-interval-rule"),
    ("Delivery: flat or by time of day", "delivery-flat-or-by-time-of-day"),
    ("ElectricityPriceLow", "electricitypricelow"),
    ("See [the docs](docs/README.md) — **now**", "see-the-docs--now"),
])
def test_slugs_follow_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_a_broken_link_or_anchor_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# B\n\n## Twice\n\n## Twice\n\n```\n## Not a heading\n```\n")
    page = tmp_path / "a.md"
    page.write_text("# A\n\n"
                    "[ok](docs/b.md) [ok](docs/b.md#b) [ok](docs/b.md#twice-1) [ok](#a) [web](https://example.com/x)\n"
                    "`[code](missing.md)` [bad](docs/c.md) [bad](docs/b.md#twice-2) [bad](#nothing)\n"
                    "[bad](docs/b.md#not-a-heading) [bad](../outside.md)\n"
                    "```\n[fenced](missing.md)\n```\n")
    found = problems(page, tmp_path)
    assert [line.split(": ", 2)[1] for line in found] == [
        "docs/c.md", "docs/b.md#twice-2", "#nothing", "docs/b.md#not-a-heading", "../outside.md"], found
