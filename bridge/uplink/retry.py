"""Reconnect pacing and repeat-limited logging for the uplink (a flapping broker link backs off and
does not flood the log)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from linebridge.pacing import Backoff


class Retry:
    """Capped exponential backoff with jitter that starts over only after a healthy connection.

    A connection that drops within `healthy` seconds of being made counts as one more failure, so a
    broker that accepts and then throws the node out is retried ever more slowly, not hammered.
    """

    def __init__(self, initial: float, maximum: float, healthy: float) -> None:
        self.backoff, self.healthy_after = Backoff(initial, maximum), healthy
        self.failures = 0
        self._connected_at: float | None = None

    def connected(self, now: float) -> None:
        """A connection was made at `now`."""
        self._connected_at = now

    def healthy(self) -> None:
        """Start over (we left on purpose)."""
        self.failures, self._connected_at = 0, None

    def failed(self, now: float) -> float:
        """The connection (attempt) failed at `now`: seconds to wait before the next attempt."""
        if self._connected_at is not None and now - self._connected_at >= self.healthy_after:
            self.failures = 0
        self._connected_at = None
        self.failures += 1
        return self.backoff.delay(self.failures - 1)


class RepeatLog:
    """Logs a message once, then at most once per `every` seconds with "(repeated N times)"."""

    def __init__(
        self, logger: logging.Logger, every: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.logger, self.every, self.clock = logger, every, clock
        self._seen: dict[str, tuple[float, int]] = {}  # format -> (last logged at, suppressed since)

    def log(self, level: int, msg: str, *args: object) -> None:
        """Log, or count the repeat while the same format was logged within `every` seconds."""
        now = self.clock()
        last = self._seen.get(msg)
        if last is not None and now - last[0] < self.every:
            self._seen[msg] = (last[0], last[1] + 1)
            return
        suppressed = last[1] if last is not None else 0
        self._seen[msg] = (now, 0)
        suffix = f" (repeated {suppressed} times)" if suppressed else ""
        self.logger.log(level, msg + suffix, *args)

    def warning(self, msg: str, *args: object) -> None:
        """A rate-limited warning."""
        self.log(logging.WARNING, msg, *args)

    def info(self, msg: str, *args: object) -> None:
        """A rate-limited info line."""
        self.log(logging.INFO, msg, *args)
