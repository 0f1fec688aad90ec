"""One-line logs (logfmt) with every known secret redacted, whatever the caller formats."""
from __future__ import annotations

import logging
import sys
import time
from typing import Iterable

from servicekit.config import Secret


class OneLineFormatter(logging.Formatter):
    """`ts=... level=... component=... msg="..."`: greppable, one event per line, tracebacks folded."""

    def __init__(self, component: str, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.component = component
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            kind, error, _ = record.exc_info
            message = f"{message}: {kind.__name__ if kind else 'error'}: {error}"
        for secret in self.secrets:
            message = message.replace(secret, "***")
        message = message.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        return f'ts={stamp} level={record.levelname.lower()} component={self.component} msg="{message}"'


def setup_logging(component: str, level: str, secrets: Iterable[Secret | None] = ()) -> logging.Logger:
    """Route the root logger to stderr in one-line format; returns the component's logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(component, [s.reveal() for s in secrets if s is not None]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return logging.getLogger(component)
