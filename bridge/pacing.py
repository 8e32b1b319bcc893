"""Pacing: the token bucket (rate limits) and the backoff between retries, each in one place."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass


class TokenBucket:
    """`rate` tokens a second, at most `burst` held, starting full; take() refuses at once, acquire() waits."""

    __slots__ = ("burst", "clock", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got rate {rate}, burst {burst}")
        self.rate, self.burst, self.clock = rate, float(burst), clock
        self.tokens = self.burst
        self.stamp = clock()

    def refill(self) -> float:
        """Credit the tokens earned since the last call (up to burst); the tokens now held."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens

    def take(self) -> bool:
        """Take one token now; False when there is none (nothing is taken then)."""
        if self.refill() < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def charge(self) -> None:
        """Count a use that did not wait: take a token even when none is there (later waits pay the debt)."""
        self.refill()
        self.tokens -= 1.0

    async def acquire(self) -> None:
        """Wait until a token is there, then take it (the clock must be the event loop's, monotonic)."""
        if self.refill() < 1.0:
            await asyncio.sleep((1.0 - self.tokens) / self.rate)
            # Credit the time actually slept (sleeps overshoot), or the rate falls short of the limit;
            # a rare undershoot leaves the bucket slightly negative, paid back by the next refill.
            self.refill()
        self.tokens -= 1.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter (delays in seconds): device sessions and the uplink retry with it."""

    initial: float = 0.2
    maximum: float = 10.0

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt` (0-based): between half the cap and the cap."""
        cap = min(self.maximum, self.initial * (2 ** min(attempt, 30)))
        return random.uniform(cap / 2, cap)
