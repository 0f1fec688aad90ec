"""Alertmanager's configuration, rendered from the suite's settings with jinja2.

Receivers come from `alertmanager.*` settings and the SMTP_PASSWORD secret, never from hand-edited
YAML. The committed `alertmanager/alertmanager.yml` is the rendering of the defaults.
"""
from __future__ import annotations

import os
from pathlib import Path

import jinja2

from exporters.core.config import Config

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "alertmanager" / "alertmanager.yml.j2"


def render_alertmanager_config(config: Config, templates: str = "templates/*.tmpl") -> str:
    """YAML text; `templates` is the glob of notification templates, relative to where the file is written."""
    settings = config.alertmanager
    password, chat = config.secrets.smtp_password, config.secrets.chat_webhook_url
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return environment.from_string(TEMPLATE.read_text()).render(
        templates=templates, group_wait=settings.group_wait, webhook_urls=settings.webhook_urls, email_to=settings.email_to,
        smtp_smarthost=settings.smtp_smarthost, smtp_from=settings.smtp_from, smtp_username=settings.smtp_username,
        smtp_password=password.reveal() if password else None, chat_webhook_url=chat.reveal() if chat else None)


def write_alertmanager_config(config: Config, path: Path) -> Path:
    """Write the rendering next to nothing else; 0600 because it may hold the SMTP password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_alertmanager_config(config, str(ROOT / "alertmanager" / "templates" / "*.tmpl"))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    return path
