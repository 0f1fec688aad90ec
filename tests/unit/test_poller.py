"""Poller: keeps the last good snapshot, backs off exponentially with jitter, honours Retry-After."""
from __future__ import annotations

import logging

import pytest

from servicekit.errors import AuthFailed, RateLimited, ServerError, Timeout, UpstreamError
from servicekit.poller import Backoff, Poller


class Script:
    """A fetch that answers from a list: a value, or an exception to raise."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> object:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def make(script: Script, clock: list[float], **kwargs: object) -> Poller:
    return Poller("garage", "vitals", script, 5.0, timeout=2.0, clock=lambda: clock[0], rng=lambda: 0.5,
                  **kwargs)  # type: ignore[arg-type]


async def test_failures_keep_the_last_good_snapshot_and_report_down() -> None:
    clock = [1000.0]
    poller = make(Script({"power": 1}, ServerError("vitals: HTTP 500")), clock)
    assert await poller.poll_once() == 5.0
    clock[0] = 1005.0
    await poller.poll_once()
    assert poller.latest is not None and poller.latest.value == {"power": 1} and poller.latest.taken_at == 1000.0
    assert not poller.health.up and poller.health.last_success == 1000.0
    assert poller.health.last_outcome == "server_error"


async def test_backoff_doubles_up_to_the_maximum_with_jitter() -> None:
    clock = [0.0]
    errors = [Timeout("vitals: no answer")] * 8
    poller = make(Script(*errors), clock, backoff=Backoff(maximum=60, jitter=0.2))
    delays = [await poller.poll_once() for _ in errors]
    assert delays == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0, 60.0]  # rng=0.5 -> jitter factor exactly 1
    low = Backoff(maximum=60, jitter=0.2).delay(5.0, 3, Timeout("x"), lambda: 0.0)
    high = Backoff(maximum=60, jitter=0.2).delay(5.0, 3, Timeout("x"), lambda: 0.999999)
    assert low == pytest.approx(16.0) and high == pytest.approx(24.0, rel=1e-4)


async def test_retry_after_is_honoured_even_beyond_the_backoff() -> None:
    poller = make(Script(RateLimited("vitals: HTTP 429", retry_after=120)), [0.0], backoff=Backoff(maximum=60))
    assert await poller.poll_once() == 120.0


async def test_auth_failure_waits_the_maximum_instead_of_retrying_soon() -> None:
    poller = make(Script(AuthFailed("state: HTTP 401")), [0.0], backoff=Backoff(maximum=300, jitter=0.0))
    assert await poller.poll_once() == 300.0


async def test_success_after_failures_resets_backoff_and_marks_up() -> None:
    clock = [0.0]
    poller = make(Script(Timeout("t"), Timeout("t"), {"ok": True}), clock)
    await poller.poll_once()
    await poller.poll_once()
    assert await poller.poll_once() == 5.0
    assert poller.health.up and poller.health.failures == 0


async def test_a_hung_fetch_is_cut_off_by_the_poll_timeout() -> None:
    import asyncio

    async def hang() -> None:
        await asyncio.sleep(3600)

    poller = Poller("garage", "vitals", hang, 5.0, timeout=0.05, rng=lambda: 0.5)
    await poller.poll_once()
    assert poller.health.last_outcome == "timeout" and not poller.health.up


async def test_unexpected_exception_is_a_bad_payload_not_a_crash() -> None:
    poller = make(Script(KeyError("charge_state")), [0.0])
    await poller.poll_once()
    assert poller.health.last_outcome == "bad_payload"


async def test_one_warning_per_failure_episode_not_per_retry(caplog: pytest.LogCaptureFixture) -> None:
    errors: list[UpstreamError] = [Timeout("vitals: no answer")] * 3 + [ServerError("vitals: HTTP 503")]
    poller = make(Script(*errors, {"ok": 1}), [0.0])
    with caplog.at_level(logging.DEBUG):
        for _ in range(5):
            await poller.poll_once()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("garage vitals failed (timeout): vitals: no answer; serving the last good data")
    assert any("recovered after 4 failed attempts" in r.getMessage() for r in caplog.records)


async def test_every_completed_poll_asks_for_a_render() -> None:
    renders: list[int] = []
    poller = make(Script({"a": 1}, Timeout("t")), [0.0], on_update=lambda: renders.append(1))
    await poller.poll_once()
    await poller.poll_once()
    assert len(renders) == 2
