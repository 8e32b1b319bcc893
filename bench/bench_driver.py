"""A bench-only driver: precomputed columnar batches, so the measure is the bridge and not the device.

It is registered programmatically in the bench's bridge process (`bench.bridge_proc`), never through
the `linebridge.drivers` entry points. With `rate_hz` 0 it publishes as fast as the subscribers that
keep up take the data: it holds off while the fullest of them has `high_water` samples queued. A
subscription that has dropped samples, or whose queue has stayed at the mark for STALLED_AFTER
seconds, no longer paces it (that is the stalled subscriber of `slow_consumer`). With `pace: uplink` it holds off instead while the uplink's outbox
holds `high_water` samples not yet acknowledged by the broker (`uplink_throughput`); `total_samples`
stops it after that many samples (`uplink_replay`).
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from linebridge.drivers.base import (
    BatchSink,
    DeviceDescription,
    DeviceKind,
    Driver,
    DriverOptions,
    SampleBatch,
    Signal,
    StreamHints,
    ValueType,
)

# Set by bench.bridge_proc to the bridge's TelemetryBus and Uplink (or None); read only to pace the driver.
BUS = None
UPLINK = None
STALLED_AFTER = 0.25  # seconds at the high-water mark after which a subscription stops pacing
_full_since: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class BenchOptions(DriverOptions):
    """Shape and pace of the synthetic stream."""

    signals: int = Field(100, ge=1, le=100_000)
    rows_per_batch: int = Field(10, ge=1, le=10_000)
    # Batches per second; 0 = as fast as the subscribers that keep up take them.
    rate_hz: float = Field(0.0, ge=0)
    # Timestamps are the wall clock at the hand-off to the bus (latency); else precomputed.
    stamp: bool = False
    high_water: int = Field(50_000, ge=1)
    variants: int = Field(8, ge=1, le=64)
    # What paces rate_hz 0: the subscribers' queues, or the uplink's unacknowledged samples.
    pace: Literal["subscribers", "uplink"] = "subscribers"
    # Stop publishing after this many samples (0 = never).
    total_samples: int = Field(0, ge=0)


def uplink_backlog() -> int:
    """Samples the uplink has stored and the broker has not acknowledged yet."""
    return UPLINK.outbox.samples if UPLINK is not None else 0


def backlog(high_water: int) -> int | None:
    """Samples queued by the fullest subscription that keeps up; None when there is none."""
    if BUS is None:
        return 0
    now = time.monotonic()
    worst = None
    for sub in list(BUS.subscriptions):
        if sub.options.once or getattr(sub, "dropped_total", 0):
            continue
        queued = getattr(sub, "queued", 0)
        if queued >= high_water:
            if now - _full_since.setdefault(sub, now) > STALLED_AFTER:
                continue
        else:
            _full_since.pop(sub, None)
        worst = queued if worst is None else max(worst, queued)
    return worst


class BenchDriver(Driver):
    """Signals `values/N` (doubles); each batch is `signals x rows_per_batch` samples."""

    type_name = "bench"
    options_model = BenchOptions

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        self.options: BenchOptions = ctx.options  # type: ignore[assignment]
        self.published = 0

    async def connect(self) -> DeviceDescription:
        signals = [Signal(f"values/{i}", ValueType.DOUBLE, unit="1") for i in range(self.options.signals)]
        return DeviceDescription(
            kind=DeviceKind.OTHER,
            vendor="Linebridge",
            model="Bench",
            identity=f"bench:{self.device_id}",
            name=self.device_id,
            signals=signals,
        )

    async def close(self) -> None:
        pass

    async def read(self, signals: Sequence[Signal]) -> SampleBatch:
        now = time.time_ns()
        return SampleBatch(
            self.device_id,
            [s.alias for s in signals],
            [0.0] * len(signals),
            [now] * len(signals),
            value_type=ValueType.DOUBLE,
        )

    async def stream(self, signals: Sequence[Signal], sink: BatchSink, hints: StreamHints) -> None:
        opts = self.options
        rows = opts.rows_per_batch
        aliases = [s.alias for s in signals] * rows  # shared by every batch: a fixed-shape device
        n = len(aliases)
        columns = [[math.sin(0.001 * (k * n + i)) for i in range(n)] for k in range(opts.variants)]
        base = time.time_ns()
        stamps = [base + (i // len(signals)) * 1000 for i in range(n)]
        period = 1.0 / opts.rate_hz if opts.rate_hz else 0.0
        next_at = time.monotonic()
        k = 0
        while not opts.total_samples or self.published < opts.total_samples:
            if period:
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            elif opts.pace == "uplink":
                await self._wait_for_uplink(opts.high_water)
            else:
                await self._wait_for_room(opts.high_water)
            k = (k + 1) % opts.variants
            # Fresh value and timestamp lists per batch, as a real driver builds them (a C-level copy).
            timestamps = [time.time_ns()] * n if opts.stamp else stamps.copy()
            sink.publish(
                SampleBatch(
                    self.device_id, aliases, columns[k].copy(), timestamps, value_type=ValueType.DOUBLE
                )
            )
            self.published += n
            if not period:
                await asyncio.sleep(0)
        await asyncio.Event().wait()  # total reached: stay connected, publish nothing more

    @staticmethod
    async def _wait_for_uplink(high_water: int) -> None:
        while True:
            if uplink_backlog() < high_water:
                return
            await asyncio.sleep(0.0005)

    @staticmethod
    async def _wait_for_room(high_water: int) -> None:
        while True:
            queued = backlog(high_water)
            if queued is not None and queued < high_water:
                return
            await asyncio.sleep(0.0005)
