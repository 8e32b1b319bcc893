"""Polling: run a poll group's read plan at its rate and publish what changed as one batch per cycle."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable, Mapping

from linebridge.drivers.base import BatchSink, Quality, SampleBatch, Signal, Unavailable, Value
from linebridge.drivers.modbus.client import UnitClient
from linebridge.drivers.modbus.codec import swap_register_bytes
from linebridge.drivers.modbus.pdu import ModbusException
from linebridge.drivers.modbus.planner import GroupPlan, ReadBlock

_UNSET: object = object()
# A silent device must be reported within 3 poll periods: the next request starts within one
# period and may wait at most two.
_TIMEOUT_PERIODS = 2.0


def poll_timeout(interval: float, timeout: float) -> float:
    """Request timeout while polling: the configured one, capped at two poll periods."""
    return min(timeout, _TIMEOUT_PERIODS * interval)


def decode_block(block: ReadBlock, raw: bytes) -> list[Value]:
    """Engineering values of a block's points, in block order, from the raw read data."""
    base = block.start
    if block.table.is_bits:
        return [bool((raw[(p.address - base) >> 3] >> ((p.address - base) & 7)) & 1) for p in block.points]
    swapped: bytes | None = None
    values: list[Value] = []
    for point in block.points:
        codec = point.codec
        assert codec is not None
        if codec.swap and swapped is None:
            swapped = swap_register_bytes(raw)
        value = codec.decode(raw, swapped, 2 * (point.address - base))
        values.append(point.engineering(value) if point.scaled else value)
    return values


class Health:
    """The device's failing read blocks; tells the sink and the log once per change."""

    def __init__(self, sink: BatchSink, logger: logging.Logger) -> None:
        self._sink, self._log = sink, logger
        self._failing: dict[str, str] = {}

    def failed(self, key: str, reason: str) -> None:
        """A block's read failed (exception response): data is partial."""
        if self._failing.get(key) != reason:
            self._failing[key] = reason
            self._log.warning("read %s failed: %s", key, reason)
            self._sink.degraded("; ".join(self._failing.values()))

    def recovered(self, key: str) -> None:
        """A block's read works again."""
        if self._failing.pop(key, None) is not None:
            self._log.info("read %s works again", key)
            self._sink.degraded("; ".join(self._failing.values()) or None)


class GroupPoller:
    """Polls one group; the first cycle publishes every value, later cycles only the changed ones."""

    def __init__(
        self,
        device_id: str,
        plan: GroupPlan,
        signals: Mapping[str, Signal],
        client: UnitClient,
        timeout: float,
        deadband: float,
        health: Health,
    ) -> None:
        self.plan = plan
        self._device_id = device_id
        self._client = client
        self._timeout = poll_timeout(plan.interval, timeout)
        self._deadband = deadband
        self._health = health
        self._aliases = [[signals[p.path].alias for p in block.points] for block in plan.blocks]
        self._last: list[list[object]] = [[_UNSET] * len(block.points) for block in plan.blocks]
        self._failed: set[int] = set()
        types = {signals[p.path].value_type for block in plan.blocks for p in block.points}
        self._value_type = types.pop() if len(types) == 1 else None

    async def run(self, sink: BatchSink) -> None:
        """Poll at the group's rate until cancelled or the link breaks (Unavailable)."""
        loop = asyncio.get_running_loop()
        interval = self.plan.interval
        deadline = loop.time()
        while True:
            await self.cycle(sink)
            deadline += interval
            now = loop.time()
            if deadline < now:  # overran: skip the missed cycles instead of bursting to catch up
                deadline += math.ceil((now - deadline) / interval) * interval
            await asyncio.sleep(deadline - now)

    async def cycle(self, sink: BatchSink) -> None:
        """Read every block once and publish one batch of the changed values."""
        aliases: list[int] = []
        values: list[Value] = []
        stamps: list[int] = []
        for index, block in enumerate(self.plan.blocks):
            try:
                raw = await self._client.read(block.table, block.start, block.count, self._timeout)
            except ModbusException as exc:
                if exc.from_gateway:
                    self._fail_all(sink, str(exc))
                    raise Unavailable(str(exc)) from None
                self._block_failed(sink, index, str(exc))
                continue
            except Unavailable as exc:
                self._fail_all(sink, str(exc))
                raise
            self._collect(index, decode_block(block, raw), time.time_ns(), aliases, values, stamps)
        if aliases:
            sink.publish(SampleBatch(self._device_id, aliases, values, stamps, None, self._value_type))
        else:
            sink.alive()  # the device answered; nothing changed

    def _collect(
        self,
        index: int,
        decoded: list[Value],
        stamp: int,
        aliases: list[int],
        values: list[Value],
        stamps: list[int],
    ) -> None:
        last = self._last[index]
        block_aliases = self._aliases[index]
        before = len(aliases)
        for i, value in enumerate(decoded):
            previous = last[i]
            if previous is not _UNSET and not self._changed(value, previous):
                continue
            last[i] = value
            aliases.append(block_aliases[i])
            values.append(value)
        stamps.extend([stamp] * (len(aliases) - before))
        if index in self._failed:
            self._failed.discard(index)
            self._health.recovered(self._key(index))

    def _changed(self, value: Value, previous: object) -> bool:
        if value == previous:
            return False
        if (
            isinstance(value, float)
            and math.isnan(value)
            and isinstance(previous, float)
            and math.isnan(previous)
        ):
            return False
        if self._deadband > 0 and isinstance(value, int | float) and not isinstance(value, bool):
            return abs(value - previous) > self._deadband  # type: ignore[operator]
        return True

    def _key(self, index: int) -> str:
        return f"{self.plan.name} {self.plan.blocks[index].label}"

    def _block_failed(self, sink: BatchSink, index: int, reason: str) -> None:
        """Mark the block's last values BAD once, and publish them afresh when it recovers."""
        self._health.failed(self._key(index), reason)
        if index in self._failed:
            return
        self._failed.add(index)
        self._publish_bad(sink, [index])

    def _fail_all(self, sink: BatchSink, reason: str) -> None:
        """The link broke: this cycle is not GOOD; say so and mark the group's values BAD."""
        sink.degraded(reason)
        self._publish_bad(sink, range(len(self.plan.blocks)))

    def _publish_bad(self, sink: BatchSink, indexes: Iterable[int]) -> None:
        aliases: list[int] = []
        values: list[Value] = []
        for index in indexes:
            last = self._last[index]
            for i, value in enumerate(last):
                if value is not _UNSET:
                    aliases.append(self._aliases[index][i])
                    values.append(value)  # type: ignore[arg-type]
                    last[i] = _UNSET
        if aliases:
            count = len(aliases)
            sink.publish(
                SampleBatch(
                    self._device_id,
                    aliases,
                    values,
                    [time.time_ns()] * count,
                    [int(Quality.BAD)] * count,
                    self._value_type,
                )
            )
