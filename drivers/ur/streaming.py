"""RTDE data packages -> columnar SampleBatches: the stream plan and the packet batcher.

Hot path: one struct unpack and one C-level itemgetter per packet; columns grow by extend;
a batch is published per `max_packets` packets or `window` seconds, never per sample.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter

from linebridge.drivers.base import BatchSink, SampleBatch, Signal
from linebridge.drivers.ur.fields import FIELDS_BY_NAME, RtdeAddress
from linebridge.drivers.ur.rtde import ProtocolError, Recipe

TIMESTAMP = "timestamp"
# RTDE `timestamp` is seconds since the controller started: anything outside 0..~31 years (NaN, inf,
# 1e300) is not a controller clock and would not fit an int64 nanosecond source time.
MAX_CONTROLLER_SECONDS = 1e9


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """Which RTDE variables to request and which flat-tuple elements feed which signal aliases."""

    names: tuple[str, ...]
    aliases: tuple[int, ...]
    indices: tuple[int, ...]  # positions in the decoded flat tuple (0 is the recipe id)

    def picker(self) -> Callable[[tuple], tuple]:
        """A function taking a decoded row to the values of `aliases`, in order."""
        if len(self.indices) == 1:
            (only,) = self.indices
            return lambda row: (row[only],)
        return itemgetter(*self.indices)


def plan_stream(signals: Sequence[Signal]) -> StreamPlan:
    """Build the recipe (timestamp first: it dates every packet) and element map for RTDE signals."""
    names = [TIMESTAMP]
    for signal in signals:
        if signal.address.variable not in names:
            names.append(signal.address.variable)
    offsets, index = {}, 1
    for name in names:
        offsets[name] = index
        index += FIELDS_BY_NAME[name].rtde_type.count
    aliases = tuple(s.alias for s in signals)
    indices = tuple(offsets[s.address.variable] + s.address.element for s in signals)
    return StreamPlan(tuple(names), aliases, indices)


def is_rtde_signal(signal: Signal) -> bool:
    """True for signals read from RTDE (the rest are polled from the Dashboard)."""
    return isinstance(signal.address, RtdeAddress)


@dataclass(slots=True)
class StreamCounters:
    """What the batcher counted; exposed through the driver's diagnostics."""

    packets: int = 0
    batches: int = 0
    samples: int = 0
    gaps: int = 0  # packets missing between consecutive controller timestamps
    late: int = 0  # packets received later than late_threshold beyond the best delay seen
    out_of_order: int = 0  # timestamps that did not increase


@dataclass(slots=True)
class PacketBatcher:
    """Accumulates decoded packets into columns and publishes them to the sink."""

    device_id: str
    plan: StreamPlan
    recipe: Recipe
    sink: BatchSink
    period: float  # expected seconds between packets (1 / frequency)
    window: float
    max_packets: int
    late_threshold: float
    counters: StreamCounters = field(default_factory=StreamCounters)
    _pick: Callable[[tuple], tuple] = field(init=False)
    _values: list = field(init=False, default_factory=list)
    _stamps: list[int] = field(init=False, default_factory=list)
    _pending: int = field(init=False, default=0)
    _timer: asyncio.TimerHandle | None = field(init=False, default=None)
    _anchor_ns: int = field(init=False, default=0)  # wall clock of the first packet
    _anchor_ts: float = field(init=False, default=-1.0)  # controller timestamp of the first packet
    _last_ts: float = field(init=False, default=-1.0)
    _best_delay_ns: int = field(init=False, default=1 << 62)

    def __post_init__(self) -> None:
        self._pick = self.plan.picker()

    def on_packets(self, payloads: list[bytes]) -> None:
        """Decode and append a chunk of data payloads; publish when the batch is full or old."""
        now_ns = time.time_ns()
        rows = list(map(self.recipe.decode, payloads))  # all or nothing: columns stay aligned on error
        row_stamps = [self._stamp(row[1], now_ns) for row in rows]  # may raise: before any column grows
        pick, count = self._pick, len(self.plan.aliases)
        values, stamps = self._values, self._stamps
        for row, stamp in zip(rows, row_stamps, strict=True):
            values.extend(pick(row))
            stamps.extend(repeat(stamp, count))
        self._pending += len(payloads)
        self.counters.packets += len(payloads)
        if self._pending >= self.max_packets:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.window, self.flush)

    def _stamp(self, controller_ts: float, now_ns: int) -> int:
        """Source time of a packet: controller time anchored to the wall clock of the first packet."""
        if not 0.0 <= controller_ts < MAX_CONTROLLER_SECONDS:  # also refuses NaN
            raise ProtocolError(f"controller timestamp {controller_ts!r} s is not a controller uptime")
        if self._anchor_ts < 0:
            self._anchor_ns, self._anchor_ts, self._last_ts = (
                now_ns,
                controller_ts,
                controller_ts - self.period,
            )
        step = controller_ts - self._last_ts
        if step <= 0:
            self.counters.out_of_order += 1
        elif step > 1.5 * self.period:
            self.counters.gaps += round(step / self.period) - 1
        self._last_ts = controller_ts
        stamp = self._anchor_ns + round((controller_ts - self._anchor_ts) * 1e9)
        delay = now_ns - stamp
        if delay < self._best_delay_ns:
            self._best_delay_ns = delay
        elif delay - self._best_delay_ns > self.late_threshold * 1e9:
            self.counters.late += 1
        return stamp

    def flush(self) -> None:
        """Publish what has accumulated (no-op when empty)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        batch = SampleBatch(
            self.device_id, list(self.plan.aliases) * self._pending, self._values, self._stamps
        )
        self._values, self._stamps, self._pending = [], [], 0
        self.counters.batches += 1
        self.counters.samples += len(batch.aliases)
        self.sink.publish(batch)
