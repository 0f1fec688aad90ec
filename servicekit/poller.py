"""One background task per upstream endpoint: poll, keep the last good snapshot, back off on failure.

Scrapes only ever read `Poller.latest` (one reference), so a hung upstream can never slow /metrics.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, TypeVar

from servicekit.errors import AuthFailed, BadPayload, Timeout, UpstreamError

T = TypeVar("T")
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class Snapshot(Generic[T]):
    value: T
    taken_at: float


@dataclass
class Health:
    """What the last attempt said; `up` is true only while the latest attempt succeeded."""

    up: bool = False
    last_success: float | None = None
    failures: int = 0
    last_outcome: str | None = None
    last_error: str | None = None
    next_attempt: float | None = None


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter; `Retry-After` is honoured, a rejected credential waits longest.

    The first retry comes one interval after the failure, or after `first` seconds when set: a job that
    runs rarely (the hourly charge-history import) retries a failure within seconds, doubling up to
    `maximum`."""

    maximum: float = 300.0
    jitter: float = 0.2
    first: float | None = None

    def delay(self, interval: float, failures: int, error: UpstreamError, rng: Callable[[], float]) -> float:
        if isinstance(error, AuthFailed):
            base = max(self.maximum, interval)
        elif self.first is not None:
            base = min(self.maximum, self.first * 2 ** max(0, failures - 1))
        else:
            base = min(self.maximum, interval * 2 ** max(0, failures - 1))
            base = max(base, min(interval, self.maximum))
        delay = base * (1 - self.jitter + 2 * self.jitter * rng())
        if error.retry_after is not None:
            delay = max(delay, min(error.retry_after, MAX_RETRY_AFTER))
        return delay


class Poller(Generic[T]):
    """Polls `fetch` every `interval` seconds; the snapshot it holds only ever moves forward."""

    def __init__(self, target: str, endpoint: str, fetch: Callable[[], Awaitable[T]], interval: float, *,
                 timeout: float, backoff: Backoff = Backoff(), on_update: Callable[[], None] = lambda: None,
                 logger: logging.Logger | None = None, clock: Callable[[], float] = time.time,
                 rng: Callable[[], float] = random.random, align: float | None = None,
                 meanwhile: str = "serving the last good data") -> None:
        self.target = target
        self.endpoint = endpoint
        self.fetch = fetch
        self.interval = interval
        self.timeout = timeout
        self.backoff = backoff
        self.on_update = on_update
        self.log = logger or logging.getLogger(__name__)
        self.clock = clock
        self.rng = rng
        self.align = align  # poll at this offset past each multiple of `interval` (e.g. 90 s past 5-minute marks)
        self.meanwhile = meanwhile   # what a failure means for users, in its log line
        self.latest: Snapshot[T] | None = None
        self.health = Health()
        self._wake: asyncio.Event | None = None

    @property
    def name(self) -> str:
        return f"{self.target} {self.endpoint}"

    async def poll_once(self) -> float:
        """One attempt; returns the delay before the next one."""
        try:
            value = await asyncio.wait_for(self.fetch(), self.timeout)
        except asyncio.TimeoutError:
            return self._failed(Timeout(f"{self.endpoint}: no complete answer within {self.timeout:g}s"))
        except UpstreamError as error:
            return self._failed(error)
        except Exception as error:  # a payload our client did not foresee must not end the poll loop
            self.log.debug("%s: unexpected error", self.name, exc_info=True)
            return self._failed(BadPayload(f"{self.endpoint}: unexpected payload ({type(error).__name__}: {error})"))
        now = self.clock()
        self.latest = Snapshot(value, now)
        if self.health.failures:
            self.log.info("%s: recovered after %d failed attempts", self.name, self.health.failures)
        delay = self.interval if self.align is None else self.interval - ((now - self.align) % self.interval)
        self.health = Health(up=True, last_success=now, last_outcome="success", next_attempt=now + delay)
        self.on_update()
        return delay

    def _failed(self, error: UpstreamError) -> float:
        health = self.health
        previous = health.last_outcome
        health.up = False
        health.failures += 1
        health.last_outcome = error.outcome
        health.last_error = str(error)
        delay = self.backoff.delay(self.interval, health.failures, error, self.rng)
        health.next_attempt = self.clock() + delay
        level = logging.WARNING if previous != error.outcome else logging.DEBUG
        self.log.log(level, "%s failed (%s): %s; %s, next attempt in %gs",
                     self.name, error.outcome, error, self.meanwhile, round(delay, 2 if delay < 10 else 0))
        self.on_update()
        return delay

    def wake(self) -> None:
        """Poll now rather than at the next interval (a user changed what the next poll decides on)."""
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        self._wake = asyncio.Event()
        while True:
            delay = await self.poll_once()
            # asyncio.wait_for returns the fetch's outcome when a cancel races its completion, and the
            # cancel is lost: without this check, shutdown waited out the whole backoff (minutes).
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
