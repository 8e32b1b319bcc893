"""Command rate limits: a token bucket per identity and one per device; beyond them, RESOURCE_EXHAUSTED."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from pydantic import Field, model_validator

from linebridge.configbase import StrictModel
from linebridge.errors import RateLimited
from linebridge.pacing import TokenBucket

_MAX_BUCKETS = 10_000  # idle buckets are full anyway; forgetting the oldest loses nothing


class Bucket(StrictModel):
    """Commands per second sustained, and how many may come at once; rate 0 turns the limit off."""

    rate: float = Field(ge=0)
    burst: int = Field(0, ge=0, description="0: twice the rate (at least 1)")

    @model_validator(mode="after")
    def _burst(self) -> Bucket:
        if not self.burst:
            self.burst = max(1, math.ceil(2 * self.rate))
        return self


class RateLimits(StrictModel):
    """Limits on commands (Stop excepted): per identity (who asks) and per device (who is commanded)."""

    identity: Bucket = Field(default_factory=lambda: Bucket(rate=100.0, burst=200))
    device: Bucket = Field(default_factory=lambda: Bucket(rate=200.0, burst=400))


class TokenBuckets:
    """One token bucket per key, created full on first use; rate 0 turns the limit off."""

    def __init__(self, bucket: Bucket, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst = bucket.rate, float(bucket.burst)
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()  # least recently used first

    def take(self, key: str) -> bool:
        """Take one token for `key`; False when its bucket is empty (nothing is taken then)."""
        if not self.rate:
            return True
        bucket = self._buckets.pop(key, None) or TokenBucket(self.rate, self.burst, self._clock)
        self._buckets[key] = bucket
        while len(self._buckets) > _MAX_BUCKETS:
            self._buckets.popitem(last=False)
        return bucket.take()


class RateLimiter:
    """The two limits commands pass: the caller's first, the device's when the command is about to queue."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._identities = TokenBuckets(limits.identity, clock)
        self._devices = TokenBuckets(limits.device, clock)

    def identity(self, name: str) -> None:
        """RateLimited when `name` sends more than its share."""
        if not self._identities.take(name):
            b = self.limits.identity
            raise RateLimited(
                f"command refused [rate_limits.identity]: {name} sent more than {b.rate:g} "
                f"commands/s (burst {b.burst})"
            )

    def device(self, device_id: str) -> None:
        """RateLimited when `device_id` is commanded more often than its limit."""
        if not self._devices.take(device_id):
            b = self.limits.device
            raise RateLimited(
                f"command refused [rate_limits.device]: {device_id!r} is commanded more than "
                f"{b.rate:g} times/s (burst {b.burst})"
            )
