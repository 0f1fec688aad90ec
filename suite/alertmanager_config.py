"""Alertmanager's configuration, rendered from the suite's settings with jinja2.

Receivers come from `alertmanager.*` settings and the SMTP_PASSWORD secret, never from hand-edited
YAML. The committed `alertmanager/alertmanager.yml` is the rendering of the defaults.

Two settings reach the notification templates (alertmanager/templates/charging.tmpl) through the
rendered file itself, so the one file carries them wherever it is used (`make up`, Docker Compose):
the receivers' message text starts with definitions that replace the templates' defaults.
- `general.timezone`: "charging.local_time" prints a time in that zone. Alertmanager before 0.28
  (Debian ships 0.25, compose.yaml runs 0.27) has no time-zone function, so the zone's UTC offsets
  are rendered here as a table of its transitions (2024 to 2050; later times keep the last offset).
- `alertmanager.runbook_base_url`: "charging.runbook_base" is what the rules' relative runbook
  links (docs/alerts.md#alertname, relative to the repository root) are resolved against; unset,
  they stay relative.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import jinja2

from servicekit.config import Config

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "alertmanager" / "alertmanager.yml.j2"
# The span of the rendered time-zone table: notifications are about now, and a configuration is
# rendered again at every `make up`.
ZONE_TABLE_START = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp())
ZONE_TABLE_END = int(datetime(2051, 1, 1, tzinfo=timezone.utc).timestamp())
NANOSECONDS = 1_000_000_000


def render_alertmanager_config(config: Config, templates: str = "templates/*.tmpl") -> str:
    """YAML text; `templates` is the glob of notification templates, relative to where the file is written."""
    settings = config.alertmanager
    password, chat = config.secrets.smtp_password, config.secrets.chat_webhook_url
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return environment.from_string(TEMPLATE.read_text()).render(
        templates=templates, group_wait=settings.group_wait, webhook_urls=settings.webhook_urls, email_to=settings.email_to,
        smtp_smarthost=settings.smtp_smarthost, smtp_from=settings.smtp_from, smtp_username=settings.smtp_username,
        smtp_password=password.reveal() if password else None, chat_webhook_url=chat.reveal() if chat else None,
        notification_text=notification_text(config))


def write_alertmanager_config(config: Config, path: Path) -> Path:
    """Write the rendering next to nothing else; 0600 because it may hold the SMTP password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_alertmanager_config(config, str(ROOT / "alertmanager" / "templates" / "*.tmpl"))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    return path


def notification_text(config: Config) -> str:
    """The message text of chat and e-mail receivers: the settings' definitions, then "charging.text"."""
    parts = [local_time_template(config.general.timezone)]
    base = runbook_base(config.alertmanager.runbook_base_url)
    if base:
        parts.append('{{- define "charging.runbook_base" }}' + '{{ ' + json.dumps(base) + ' }}{{ end }}')
    parts.append('{{- template "charging.text" . }}')
    return "\n".join(parts)


# Where the rules' `runbook_url` annotations point, relative to the repository root.
RUNBOOK_PAGE = "docs/alerts.md"


def runbook_base(url: str | None) -> str | None:
    """The repository root the relative runbook links (docs/alerts.md#alertname) resolve in, ending
    in '/', as a browser resolves a relative link on the page at `url`: a URL naming a file
    (…/README.md) resolves in its folder, any other URL is taken for the folder itself (…/blob/main).
    The runbook page's own address (…/docs/alerts.md) stands for the root it lies in."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    path = parts.path
    if path.endswith("/" + RUNBOOK_PAGE):
        path = path[:-len(RUNBOOK_PAGE)]
    elif path and not path.endswith("/"):
        folder, _, last = path.rpartition("/")
        path = folder + "/" if "." in last else path + "/"
    return urlunsplit((parts.scheme, parts.netloc, path or "/", "", ""))


def zone_transitions(zone_name: str, start: int = ZONE_TABLE_START,
                     end: int = ZONE_TABLE_END) -> list[tuple[int, int, str]]:
    """(first second, UTC offset in seconds, abbreviation) of every period of the zone in [start, end)."""
    zone = ZoneInfo(zone_name)

    def period(moment: int) -> tuple[int, str]:
        local = datetime.fromtimestamp(moment, zone)
        offset = local.utcoffset()
        return int(offset.total_seconds()) if offset else 0, local.tzname() or zone_name

    periods = [(start, *period(start))]
    step = 6 * 3600   # no zone changes its offset twice in 6 hours
    moment = start
    while moment < end:
        following = min(moment + step, end)
        if period(following) != periods[-1][1:]:
            low, high = moment, following   # period(low) is the current one, period(high) is not
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if period(middle) == periods[-1][1:] else (low, middle)
            periods.append((high, *period(high)))
        moment = following
    return periods


def local_time_template(zone_name: str) -> str:
    """The Go template "charging.local_time": the time passed to it, in the zone, e.g.
    `2026-01-15 03:00 CST`. Each line moves to the offset in force from its moment on."""
    (_, first_offset, first_name), *later = zone_transitions(zone_name)
    lines = [f'{{{{- define "charging.local_time" }}}}{{{{/* {zone_name}, by its rules of 2024-2050 */}}}}',
             f'{{{{- $u := .Unix }}}}{{{{ $t := .UTC.Add {first_offset * NANOSECONDS} }}}}'
             f'{{{{ $z := {json.dumps(first_name)} }}}}']
    lines += [f'{{{{- if ge $u {moment} }}}}{{{{ $t = .UTC.Add {offset * NANOSECONDS} }}}}{{{{ $z = {json.dumps(name)} }}}}'
              '{{ end }}' for moment, offset, name in later]
    lines.append('{{- $t.Format "2006-01-02 15:04" }} {{ $z }}{{ end }}')
    return "\n".join(lines)
