"""The stored login: what the `opower` library needs to log in again without MFA (a refresh token, the
account, the login host), kept in its own file with mode 0600, written atomically, never logged.

The password is never stored: when the refresh token finally fails, only the interactive set-up (with
its MFA code) can make a new one.
"""
from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SETUP_COMMAND = "charging-meter --setup"


class CredentialError(Exception):
    """The file is missing, unreadable, not ours, or readable by others."""


@dataclass(frozen=True)
class Credential:
    utility: str
    username: str
    login_data: dict[str, Any]
    saved_at: float

    def __repr__(self) -> str:   # the refresh token must never reach a log line or a traceback
        return f"Credential(utility={self.utility!r}, saved_at={self.saved_at:.0f})"

    @property
    def secret_values(self) -> list[str]:
        """The token strings, for the log filter that redacts secrets."""
        token = self.login_data.get("token")
        return [token] if isinstance(token, str) and token else []


def load(path: str | Path) -> Credential:
    """The stored login; CredentialError says what is wrong and what to run."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CredentialError(f"no utility login stored at {path}; run: {SETUP_COMMAND}") from None
    except OSError as error:
        raise CredentialError(f"cannot read {path}: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialError(f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        credential = Credential(utility=str(data["utility"]), username=str(data.get("username", "")),
                                login_data=dict(data["login_data"]), saved_at=float(data.get("saved_at", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        raise CredentialError(f"{path} is not a stored utility login; run: {SETUP_COMMAND}") from None
    if not credential.login_data.get("token"):
        raise CredentialError(f"{path} holds no refresh token; run: {SETUP_COMMAND}")
    return credential


def save(path: str | Path, credential: Credential) -> None:
    """Write atomically (a temporary file in the same directory, fsync, rename), created with mode 0600 so
    the token is never readable by others, not even for a moment."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = json.dumps({"utility": credential.utility, "username": credential.username,
                       "login_data": credential.login_data, "saved_at": credential.saved_at}, indent=1)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def rotated(credential: Credential, login_data: dict[str, Any]) -> Credential:
    """The same login with the library's newest login data (a rotated refresh token)."""
    return Credential(credential.utility, credential.username, login_data, time.time())
