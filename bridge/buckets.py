"""The one token bucket: `rate` tokens a second, at most `burst` held, starting full."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """A token bucket on a monotonic clock; take() refuses at once, acquire() waits for a token."""

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

    async def acquire(self) -> None:
        """Wait until a token is there, then take it (the clock must be the event loop's, monotonic)."""
        if self.refill() < 1.0:
            await asyncio.sleep((1.0 - self.tokens) / self.rate)
            # Credit the time actually slept (sleeps overshoot), or the rate falls short of the limit;
            # a rare undershoot leaves the bucket slightly negative, paid back by the next refill.
            self.refill()
        self.tokens -= 1.0
