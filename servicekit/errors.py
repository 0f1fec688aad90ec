"""The small set of upstream failures every client raises and the poller maps to outcomes."""
from __future__ import annotations


class UpstreamError(Exception):
    """Base: `outcome` is the label value counted in `<prefix>_upstream_requests_total`."""

    outcome = "error"
    retry_after: float | None = None


class Unreachable(UpstreamError):
    outcome = "unreachable"


class Timeout(UpstreamError):
    outcome = "timeout"


class AuthFailed(UpstreamError):
    """401/403: retrying soon cannot help, so the poller backs off to its maximum."""

    outcome = "auth_failed"


class RateLimited(UpstreamError):
    outcome = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(UpstreamError):
    """408 and friends: the device (a sleeping car) or service is not available right now."""

    outcome = "unavailable"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerError(UpstreamError):
    outcome = "server_error"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ClientError(UpstreamError):
    """Other 4xx: our request is wrong (unknown id, bad parameter)."""

    outcome = "client_error"


class BadPayload(UpstreamError):
    """The answer is not what the API promises: invalid JSON, wrong types, missing fields, too big."""

    outcome = "bad_payload"


class NoData(UpstreamError):
    """A valid answer with nothing in it (ComEd's empty list): no data, never a zero."""

    outcome = "no_data"


OUTCOMES = ("success", "timeout", "unreachable", "auth_failed", "rate_limited", "unavailable",
            "server_error", "client_error", "bad_payload")
