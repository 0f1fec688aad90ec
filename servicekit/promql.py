"""Adding one label matcher to every vector selector of a PromQL expression (a dashboard's `site`).

A lexer, not a parser: in PromQL a vector selector is recognisable from its tokens alone. A name is a
metric unless it is a keyword, an aggregation operator, a function (the next token is `(`), or a label
of a `by`/`without`/`on`/`ignoring`/`group_left`/`group_right` list; braces are always a selector's
matchers, with or without a name before them. Strings, numbers, durations and Grafana variables
(`$x`, `${x:fmt}`, `[[x]]`) are read whole and never changed. What the lexer cannot read, or a bracket
that does not match, raises ValueError naming the position: a query is never half rewritten.
Grafana's `label_values(...)` variable queries are not PromQL and are not read here.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Callable

KEYWORDS = frozenset({"and", "or", "unless", "atan2", "by", "without", "on", "ignoring", "group_left",
                      "group_right", "bool", "offset", "inf", "nan"})
AGGREGATORS = frozenset({"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                         "bottomk", "topk", "quantile", "limitk", "limit_ratio"})
LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
OPERATORS = ("=~", "!~", "!=", "==", "<=", ">=")   # two characters; the rest are single ones
SINGLE = "+-*/%^<>=(){}[],@:"

_SPACE = re.compile(r"\s+|#[^\n]*")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`')
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\]")
_NUMBER = re.compile(r"(?:\d+(?:ms|[smhdwy]))+(?![A-Za-z0-9_])|0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_METRIC = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")   # in braces, brackets and label lists `:` is punctuation


@dataclass(frozen=True)
class Token:
    kind: str          # name, string, number, variable, op
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def _never(_name: str | None) -> bool:
    return False


def tokens(expr: str) -> list[Token]:
    """The expression's tokens, whitespace and comments left out; ValueError at what it cannot read."""
    found: list[Token] = []
    depth: list[str] = []          # open brackets, to know where `:` starts a name
    i = 0
    while i < len(expr):
        char = expr[i]
        if match := _SPACE.match(expr, i):
            i = match.end()
            continue
        if char in "\"'`":
            match = _STRING.match(expr, i)
            if not match:
                raise ValueError(f"unterminated string at position {i} of {expr!r}")
            kind = "string"
        elif char == "$" or expr.startswith("[[", i):
            match = _VARIABLE.match(expr, i)
            if not match:
                raise ValueError(f"unreadable Grafana variable at position {i} of {expr!r}")
            kind = "variable"
        elif char.isdigit() or (char == "." and expr[i + 1:i + 2].isdigit()):
            match = _NUMBER.match(expr, i)
            assert match is not None
            if match.end() < len(expr) and (expr[match.end()].isalnum() or expr[match.end()] == "_"):
                raise ValueError(f"unreadable number at position {i} of {expr!r}")
            kind = "number"
        elif match := (_METRIC if not depth or depth[-1] == "(" else _LABEL).match(expr, i):
            kind = "name"
        elif expr.startswith(OPERATORS, i) or char in SINGLE:
            text = expr[i:i + 2] if expr.startswith(OPERATORS, i) else char
            found.append(Token("op", text, i))
            if text in "([{":
                depth.append(text)
            elif text in ")]}" and depth:
                depth.pop()
            i += len(text)
            continue
        else:
            raise ValueError(f"unexpected {char!r} at position {i} of {expr!r}")
        found.append(Token(kind, match.group(), i))
        i = match.end()
    return found


def _label_name(token: Token) -> str:
    """A label name as written: bare, or quoted (Prometheus 3's UTF-8 names)."""
    if token.kind != "string":
        return token.text
    return token.text[1:-1] if token.text[0] == "`" else ast.literal_eval(token.text)


def _matchers(found: list[Token], open_at: int) -> tuple[int, set[str], str | None]:
    """The braces opening at found[open_at]: index of `}`, the label names matched, a quoted metric name."""
    labels: set[str] = set()
    name: str | None = None
    i = open_at + 1
    while i < len(found) and found[i].text != "}":
        token = found[i]
        if token.kind not in ("name", "string", "variable"):
            raise ValueError(f"unexpected {token.text!r} at position {token.start} in a selector's braces")
        following = found[i + 1] if i + 1 < len(found) else None
        if following is not None and following.text in ("=", "!=", "=~", "!~"):
            value = found[i + 2] if i + 2 < len(found) else None
            if value is None or value.kind not in ("string", "variable"):
                raise ValueError(f"a matcher without a value at position {token.start}")
            labels.add(_label_name(token))
            i += 3
        elif token.kind == "string":
            name, i = _label_name(token), i + 1     # {"metric.name", ...}
        else:
            raise ValueError(f"a label without a matcher at position {token.start}")
        if i < len(found) and found[i].text == ",":
            i += 1
        elif i < len(found) and found[i].text != "}":
            raise ValueError(f"expected ',' or '}}' at position {found[i].start}")
    if i >= len(found):
        raise ValueError(f"unclosed '{{' at position {found[open_at].start}")
    return i, labels, name


def parse_matcher(matcher: str) -> str:
    """The label name of a complete matcher (`site="home"`, `site=~"$site"`); ValueError if it is not one."""
    found = tokens("{" + matcher + "}")
    close, labels, name = _matchers(found, 0)
    if close != len(found) - 1 or len(labels) != 1 or name is not None:
        raise ValueError(f"not a single label matcher: {matcher!r}")
    return next(iter(labels))


def with_matcher(expr: str, matcher: str, *, skip: Callable[[str | None], bool] = _never) -> str:
    """`expr` with `matcher` added to every vector selector that has no matcher on its label yet and whose
    metric name (None without one) `skip` does not exclude."""
    label = parse_matcher(matcher)
    found = tokens(expr)
    inserts: list[tuple[int, str]] = []
    stack: list[tuple[str, bool]] = []     # open brackets: ("(", is a label list), ("[", False)
    i = 0
    while i < len(found):
        token, previous = found[i], found[i - 1] if i else None
        following = found[i + 1] if i + 1 < len(found) else None
        in_list = bool(stack) and stack[-1][1]
        in_range = bool(stack) and stack[-1][0] == "["
        if token.text in ("(", "["):
            label_list = token.text == "(" and previous is not None and previous.kind == "name" \
                and previous.text.lower() in LABEL_LISTS
            stack.append((token.text, label_list))
        elif token.text in (")", "]"):
            if not stack or stack[-1][0] != {")": "(", "]": "["}[token.text]:
                raise ValueError(f"unmatched {token.text!r} at position {token.start} of {expr!r}")
            stack.pop()
        elif token.text == "}":
            raise ValueError(f"unmatched '}}' at position {token.start} of {expr!r}")
        elif in_list:
            if token.kind not in ("name", "string", "variable") and token.text != ",":
                raise ValueError(f"unexpected {token.text!r} at position {token.start} in a label list")
        elif token.text == "{":
            named = previous is not None and previous.kind in ("name", "variable") and not _not_metric(previous, token)
            close, labels, quoted = _matchers(found, i)
            name = previous.text if named and previous is not None else quoted
            if label not in labels and not skip(name):
                last = found[close - 1]
                inserts.append((last.end, matcher if last.text in ("{", ",") else "," + matcher))
            i = close
        elif token.kind == "name" and in_range:
            raise ValueError(f"unexpected name {token.text!r} at position {token.start} in a range")
        elif token.kind == "name" and not _not_metric(token, following):
            if following is None or following.text != "{":
                if not skip(token.text):
                    inserts.append((token.end, "{" + matcher + "}"))
        i += 1
    if stack:
        raise ValueError(f"unclosed {stack[-1][0]!r} in {expr!r}")
    for at, text in reversed(inserts):
        expr = expr[:at] + text + expr[at:]
    return expr


def _not_metric(token: Token, following: Token | None) -> bool:
    """A keyword, an aggregation operator or a function's name, not a metric's."""
    word = token.text.lower()
    return token.kind == "name" and (word in KEYWORDS or word in AGGREGATORS
                                     or (following is not None and following.text == "("))


# Series with no site label: Prometheus's, Alertmanager's and VictoriaMetrics's own, and the constant
# thresholds of rules/thresholds.yml. A site's matcher (`site="home"`) would drop them from a query.
# `up` and `scrape_*` are not here: Prometheus gives them their target's labels, so those of a home's
# jobs carry the site and must follow it.
NO_SITE_PREFIXES = ("prometheus_", "alertmanager_", "vm_", "vmagent_", "vmalert_", "charging_threshold:")


def without_site(name: str | None) -> bool:
    """A metric that carries no `site` label: the `skip` of a site's matcher."""
    return name is not None and name.startswith(NO_SITE_PREFIXES)
