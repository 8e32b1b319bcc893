"""linebridge.pacing.TokenBucket: the one token bucket (command rate limits, uplink publish rate)."""

from __future__ import annotations

import asyncio

import pytest

from linebridge.pacing import Backoff, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_starts_full_refuses_when_empty_and_refills_at_its_rate():
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now = 0.5  # one token back
    assert [bucket.take() for _ in range(2)] == [True, False]
    clock.now = 100.0  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_charge_takes_a_token_even_from_an_empty_bucket_and_the_debt_delays_the_next():
    clock = Clock()
    bucket = TokenBucket(rate=10.0, burst=1, clock=clock)
    bucket.charge()
    bucket.charge()  # one token into debt
    assert not bucket.take()
    clock.now = 0.15  # 1.5 tokens earned: the debt paid, half a token left
    assert not bucket.take()
    clock.now = 0.2
    assert bucket.take()


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0.5)])
def test_a_bucket_that_could_never_give_a_token_is_refused(rate, burst):
    with pytest.raises(ValueError, match="rate > 0 and burst >= 1"):
        TokenBucket(rate, burst)


async def test_acquire_takes_at_once_while_tokens_last_then_waits_for_the_next():
    loop = asyncio.get_running_loop()
    bucket = TokenBucket(rate=50.0, burst=2, clock=loop.time)
    await bucket.acquire()
    await bucket.acquire()
    assert bucket.tokens < 1.0  # empty: the next acquire has to wait for a refill
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    await asyncio.wait_for(waiter, timeout=5.0)  # bounded: the token comes at the bucket's rate
    assert bucket.tokens < 1.0


def test_backoff_doubles_up_to_its_cap_with_jitter_below_it():
    backoff = Backoff(initial=0.2, maximum=1.0)
    for attempt, cap in [(0, 0.2), (1, 0.4), (2, 0.8), (3, 1.0), (50, 1.0)]:
        delays = [backoff.delay(attempt) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays)
