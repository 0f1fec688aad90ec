"""Value types of the configuration: each parses one YAML value or one environment string.

Every parser raises `ConfigError` with a single line that names the key, the bad value and
the fix, because that line is all a user sees when start-up stops.
"""
from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from servicekit.identifiers import is_vin
from billing.tariff import ALL_DAYS, ALL_MONTHS, DeliveryPeriod, parse_clock, weekday_numbers


class ConfigError(ValueError):
    """Invalid configuration; str(error) is the one line printed before exiting with status 2."""


# Containers are shown through reprlib, which bounds depth and length: repr() of a deeply nested
# YAML value raises RecursionError, and of a huge one costs time for text that is cut anyway.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 4, 60, 60


def show(value: Any) -> str:
    """Render a bad value for an error message, short enough for one line."""
    text = _SHORT.repr(value) if isinstance(value, (list, tuple, dict, set)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _finite(number: int | float) -> bool:
    """False for inf, nan and integers too large for a float (YAML and env values can be any of them)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def fail(key: str, problem: str, value: Any, fix: str) -> ConfigError:
    return ConfigError(f"{key}: {problem}, got {show(value)}; {fix}")


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?"
                       r"\s*(?:(\d+(?:\.\d+)?)s)?\s*(?:(\d+(?:\.\d+)?)ms)?\s*$")


def parse_duration(text: str) -> float | None:
    """'90', '90s', '5m', '1h30m', '1d', '250ms' -> seconds; None when it is not a duration."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text)
    if not text or not match or not any(match.groups()):
        return None
    days, hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds + millis / 1000


@dataclass(frozen=True)
class Listen:
    """A host:port to bind; loopback unless the user asks otherwise."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class Charger:
    """One Wall Connector reachable on the LAN: a friendly name and its base URL."""

    name: str
    url: str


class Kind:
    """A configuration value type. `parse` takes the YAML value, `parse_env` the env string."""

    describe = "a value"
    fix = ""

    def parse(self, key: str, value: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def parse_env(self, key: str, text: str) -> Any:
        return self.parse(key, text)


class Bool(Kind):
    describe = "true or false"
    _WORDS = {"true": True, "yes": True, "on": True, "1": True,
              "false": False, "no": False, "off": False, "0": False}

    def parse(self, key: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in self._WORDS:
            return self._WORDS[value.strip().lower()]
        raise fail(key, "must be true or false", value, "write true or false")


@dataclass
class Number(Kind):
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    exclusive_minimum: bool = False
    unit: str = ""

    def parse(self, key: str, value: Any) -> float | int:
        number = value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not _finite(number):
            raise fail(key, f"must be a number{self._unit()}", value, f"write a number such as {self._example()}")
        if self.integer:
            if number != int(number):
                raise fail(key, "must be a whole number", value, f"write a whole number such as {self._example()}")
            number = int(number)
        too_low = self.minimum is not None and (
            number <= self.minimum if self.exclusive_minimum else number < self.minimum)
        too_high = self.maximum is not None and number > self.maximum
        if too_low or too_high:
            raise fail(key, f"must be {self._range()}", value, f"use a value {self._range()}")
        return number

    def _unit(self) -> str:
        return f" in {self.unit}" if self.unit else ""

    def _example(self) -> str:
        return str(self.minimum if self.minimum is not None and not self.exclusive_minimum else 1)

    def _range(self) -> str:
        low = "" if self.minimum is None else ("> " if self.exclusive_minimum else ">= ") + f"{self.minimum:g}"
        high = "" if self.maximum is None else f"<= {self.maximum:g}"
        return " and ".join(part for part in (low, high) if part) or "a number"


@dataclass
class OptionalNumber(Number):
    """A number in range, or empty (null, '') for none."""

    def parse(self, key: str, value: Any) -> float | int | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return super().parse(key, value)


@dataclass
class Duration(Kind):
    """Seconds as a number, or a string such as '30s', '5m', '1h30m', '2d'."""

    allow_zero: bool = False

    def parse(self, key: str, value: Any) -> float:
        seconds: float | None
        if isinstance(value, bool):
            seconds = None
        elif isinstance(value, (int, float)):
            seconds = float(value) if _finite(value) else None
        elif isinstance(value, str):
            seconds = parse_duration(value)
        else:
            seconds = None
        if seconds is None or not _finite(seconds):
            raise fail(key, "must be a duration", value, "write seconds (60) or a duration such as 30s, 5m, 1h")
        if seconds < 0 or (seconds == 0 and not self.allow_zero):
            bound = "zero or more" if self.allow_zero else "greater than zero"
            raise fail(key, f"must be {bound}", value, "use a positive duration such as 30s or 5m")
        return seconds


@dataclass
class Choice(Kind):
    choices: tuple[str, ...]

    def parse(self, key: str, value: Any) -> str:
        text = str(value).strip().lower() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
        if text not in self.choices:
            raise fail(key, "must be one of " + ", ".join(self.choices), value, f"pick one of {', '.join(self.choices)}")
        return text


class Text(Kind):
    def parse(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise fail(key, "must be a non-empty string", value, "write it as text, quoted if needed")
        return value.strip()


class OptionalText(Text):
    def parse(self, key: str, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return super().parse(key, value)


def _http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError:  # also an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class Url(Kind):
    def parse(self, key: str, value: Any) -> str:
        text = value.strip() if isinstance(value, str) else None
        if not text or not _http_url(text):
            raise fail(key, "must be an http:// or https:// URL", value, "write a URL such as http://127.0.0.1:9090")
        return text.rstrip("/")


_TZ_NAME = re.compile(r"^[A-Za-z0-9_+-]{1,40}(/[A-Za-z0-9_+-]{1,40}){0,3}$")


class OptionalUrl(Url):
    """An http(s) URL, or empty for none."""

    def parse(self, key: str, value: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return super().parse(key, value)


class TimeZone(Kind):
    def parse(self, key: str, value: Any) -> str:
        # Only plausible IANA names reach ZoneInfo: it recurses on very long paths ('a/' * 3000).
        if not isinstance(value, str) or not _TZ_NAME.fullmatch(value):
            raise fail(key, "is not a known time zone", value, "use an IANA name such as America/Chicago")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise fail(key, "is not a known time zone", value, "use an IANA name such as America/Chicago") from None
        return value


class Address(Kind):
    """host:port to listen on, for example 127.0.0.1:9881."""

    def parse(self, key: str, value: Any) -> Listen:
        text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        host, sep, port = text.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
            raise fail(key, "must be host:port", value, "write an address such as 127.0.0.1:9881")
        return Listen(host, int(port))


def _pairs(key: str, text: str, example: str) -> list[tuple[str, str]]:
    """'a:b,c:d' -> [(a, b), (c, d)]; splits each item at its first colon."""
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        left, sep, right = item.partition(":")
        if not sep or not left.strip() or not right.strip():
            raise fail(key, "must be a comma-separated list of key:value pairs", text, f"write it as {example}")
        pairs.append((left.strip(), right.strip()))
    return pairs


def charger_url(address: str) -> str:
    """A bare host (the charger's LAN IP) means plain HTTP on port 80, as the real unit serves."""
    address = address.strip().rstrip("/")
    return address if "://" in address else f"http://{address}"


class ChargerList(Kind):
    """Wall Connectors: YAML list of {name, address}; TWC_CHARGERS=name:host,name:host:port."""

    example = "garage:192.168.1.50,driveway:192.168.1.51"

    def parse(self, key: str, value: Any) -> tuple[Charger, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise fail(key, "must be a list of {name, address}", value,
                       "write entries like '- {name: garage, address: 192.168.1.50}'")
        chargers = []
        for index, item in enumerate(value):
            where = f"{key}[{index}]"
            if not isinstance(item, dict):
                raise fail(where, "must be a mapping with name and address", item,
                           "write '{name: garage, address: 192.168.1.50}'")
            unknown = sorted(set(item) - {"name", "address"})
            if unknown:
                raise fail(f"{where}.{unknown[0]}", "is not a known key", item[unknown[0]],
                           "only name and address are allowed")
            for field in ("name", "address"):
                if field not in item:
                    raise fail(f"{where}.{field}", "is missing", None, f"add {field}: to the entry")
            chargers.append(Charger(Text().parse(f"{where}.name", item["name"]),
                                    charger_url(Text().parse(f"{where}.address", item["address"]))))
        return self._unique(key, chargers)

    def parse_env(self, key: str, text: str) -> tuple[Charger, ...]:
        return self._unique(key, [Charger(name, charger_url(host)) for name, host in _pairs(key, text, self.example)])

    @staticmethod
    def _unique(key: str, chargers: list[Charger]) -> tuple[Charger, ...]:
        names = [c.name for c in chargers]
        for name in names:
            if names.count(name) > 1:
                raise fail(key, "has a duplicate charger name", name, "give every charger its own name")
        return tuple(chargers)


@dataclass
class NameMap(Kind):
    """id -> friendly name: YAML mapping, or 'id:name,id:name' in the environment."""

    example: str
    validate_id: Callable[[str], bool] | None = None
    id_hint: str = ""

    def parse(self, key: str, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise fail(key, "must be a mapping of id: name", value, f"write it as a mapping or, in the environment, {self.example}")
        for name in value.values():
            if isinstance(name, (list, dict)):
                raise fail(key, "has a name that is not text", name, f"write it as {self.example}")
        return self._checked(key, [(str(k).strip(), "" if v is None else str(v).strip()) for k, v in value.items()])

    def parse_env(self, key: str, text: str) -> dict[str, str]:
        return self._checked(key, _pairs(key, text, self.example))

    def _checked(self, key: str, pairs: list[tuple[str, str]]) -> dict[str, str]:
        for ident, name in pairs:
            if self.validate_id and not self.validate_id(ident):
                raise fail(key, f"has an invalid id ({self.id_hint})", ident, f"write it as {self.example}")
            if not name:
                raise fail(key, "has an empty name", ident, f"write it as {self.example}")
        return dict(pairs)


class UrlList(Kind):
    """A list of http(s) URLs: YAML list, or comma-separated in the environment."""

    def parse(self, key: str, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            return self.parse_env(key, value)
        if not isinstance(value, list):
            raise fail(key, "must be a list of URLs", value, "write '- https://...' entries")
        return tuple(Url().parse(f"{key}[{i}]", item) for i, item in enumerate(value))

    def parse_env(self, key: str, text: str) -> tuple[str, ...]:
        return tuple(Url().parse(key, part.strip()) for part in text.split(",") if part.strip())


@dataclass
class CentsPerKwh(Kind):
    """A price per kWh in cents, the unit every metric, panel and alert shows. A value that only makes
    sense in dollars (0.075) is refused with the cents it probably means; so is one no tariff charges.
    `env_dollars`: the environment variable keeps the dollars the original InfluxDB setup used."""

    maximum: float = 100.0
    env_dollars: bool = False

    def parse(self, key: str, value: Any) -> float:
        cents = Number(minimum=0, unit="cents/kWh").parse(key, value)
        if 0 < cents < 0.5:
            raise fail(key, "is in cents per kWh, and this looks like dollars", value,
                       f"write {cents * 100:g} for {cents * 100:g} cents")
        if cents > self.maximum:
            raise fail(key, f"is in cents per kWh, and no tariff charges more than {self.maximum:g}", value,
                       "check the unit: 7.5 means 7.5 cents")
        return float(cents)

    def parse_env(self, key: str, text: str) -> float:
        if not self.env_dollars:
            return self.parse(key, text)
        dollars = Number(minimum=0, unit="$/kWh").parse(key, text)
        if dollars > 1:
            raise fail(key, "is in dollars per kWh, and this looks like cents", text,
                       f"write {dollars / 100:g} for {dollars:g} cents")
        return float(dollars) * 100


class DeliveryPeriods(Kind):
    """Time-of-day delivery: a YAML list of {name, months, days, start, end, cents_per_kwh}."""

    KEYS = ("name", "months", "days", "start", "end", "cents_per_kwh")
    example = "{name: super_peak, months: [6, 7, 8, 9], days: [mon, tue, wed, thu, fri], start: '13:00', " \
              "end: '19:00', cents_per_kwh: 10.7}"

    def parse(self, key: str, value: Any) -> tuple[DeliveryPeriod, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise fail(key, "must be a list of periods", value, f"write entries like '- {self.example}'")
        return tuple(self._period(f"{key}[{index}]", item) for index, item in enumerate(value))

    def _period(self, where: str, item: Any) -> DeliveryPeriod:
        if not isinstance(item, dict):
            raise fail(where, "must be a mapping", item, f"write it as {self.example}")
        unknown = sorted(set(item) - set(self.KEYS), key=str)   # YAML keys may be numbers: `0: ...`
        if unknown:
            raise fail(f"{where}.{unknown[0]}", "is not a known key", item[unknown[0]],
                       "use " + ", ".join(self.KEYS[:-1]) + " and " + self.KEYS[-1])
        for required in self.KEYS[3:]:
            if required not in item:
                raise fail(f"{where}.{required}", "is missing", None, f"add {required}: to the period")
        start, end = (self._clock(f"{where}.{k}", item[k]) for k in ("start", "end"))
        if start == end:
            raise fail(f"{where}.end", "must differ from start", item["end"],
                       "give the period a length (end before start wraps past midnight)")
        cents = CentsPerKwh().parse(f"{where}.cents_per_kwh", item["cents_per_kwh"]) \
            if "cents_per_kwh" in self.KEYS else 0.0
        return DeliveryPeriod(start % 1440, end, cents / 100,
                              self._months(f"{where}.months", item.get("months")),
                              self._days(f"{where}.days", item.get("days")),
                              "" if item.get("name") is None else str(item["name"]))

    @staticmethod
    def _clock(key: str, value: Any) -> int:
        minutes = parse_clock(value) if isinstance(value, str) else None
        if minutes is None:
            raise fail(key, "must be a local time HH:MM on a 5-minute mark", value,
                       "write it quoted, such as '13:00' (24:00 for midnight at the end)")
        return minutes

    @staticmethod
    def _months(key: str, value: Any) -> frozenset[int]:
        if value is None:
            return ALL_MONTHS
        if not isinstance(value, list) or not value or not all(
                isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= 12 for m in value):
            raise fail(key, "must be a list of month numbers 1 to 12", value, "write it as [6, 7, 8, 9]")
        return frozenset(value)

    @staticmethod
    def _days(key: str, value: Any) -> frozenset[int]:
        if value is None:
            return ALL_DAYS
        days = weekday_numbers(value) if isinstance(value, list) and value and all(
            isinstance(d, str) for d in value) else None
        if days is None:
            raise fail(key, "must be a list of weekdays", value, "write it as [mon, tue, wed, thu, fri]")
        return days


class PeakWindows(DeliveryPeriods):
    """Peak-risk windows the planner avoids: a YAML list of {name, months, days, start, end} (local time)."""

    KEYS = ("name", "months", "days", "start", "end")
    example = "{name: summer_afternoons, months: [6, 7, 8, 9], days: [mon, tue, wed, thu, fri], start: '13:00', " \
              "end: '19:00'}"


SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


class SiteName(Text):
    """A site's name: the `site` label of its series and the name of its data directory, so letters, digits,
    '-' and '_' only."""

    def parse(self, key: str, value: Any) -> str:
        text = value.strip() if isinstance(value, str) else ""
        if not SITE_NAME.fullmatch(text):
            raise fail(key, "must be a name of letters, digits, '-' or '_' (at most 40)", value,
                       "write a short name such as home or cabin")
        return text


@dataclass
class VinList(Kind):
    """VINs: a YAML list, or 'VIN,VIN' in the environment."""

    def parse(self, key: str, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise fail(key, "must be a list of VINs", value, "write it as [5YJ3E1EA7KF000001, ...]")
        return self._checked(key, [item.strip() for item in value])

    def parse_env(self, key: str, text: str) -> tuple[str, ...]:
        return self._checked(key, [item.strip() for item in text.split(",") if item.strip()])

    @staticmethod
    def _checked(key: str, vins: list[str]) -> tuple[str, ...]:
        for vin in vins:
            if not is_vin(vin):
                raise fail(key, "holds something that is not a 17-character VIN", vin, "list the cars' VINs")
        return tuple(dict.fromkeys(vins))
