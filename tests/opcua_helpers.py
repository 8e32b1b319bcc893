"""Test helpers for the OPC UA driver and simulator: a recording sink, driver construction, waiting."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from linebridge.drivers.base import DeviceDescription, DriverContext, SampleBatch, Signal, Value
from linebridge.drivers.opcua.driver import OpcUaDriver, OpcUaOptions
from linebridge.drivers.opcua.simulator import RobotSimulator

T = TypeVar("T")


@dataclass
class RecordingSink:
    """A BatchSink that keeps every batch and every degraded() call."""

    batches: list[SampleBatch] = field(default_factory=list)
    degraded_calls: list[str | None] = field(default_factory=list)

    def publish(self, batch: SampleBatch) -> None:
        self.batches.append(batch)

    def degraded(self, reason: str | None) -> None:
        self.degraded_calls.append(reason)

    def alive(self) -> None:
        self.keepalives = getattr(self, "keepalives", 0) + 1

    def values_of(self, alias: int) -> list[Value]:
        """Every value received for `alias`, in arrival order."""
        return [v for b in self.batches for a, v in zip(b.aliases, b.values, strict=True) if a == alias]

    def sample_count(self) -> int:
        return sum(len(b) for b in self.batches)


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `condition` until it holds; fail the test with `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def make_driver(endpoint: str, device_id: str = "robot-1", **options: Any) -> OpcUaDriver:
    """An OpcUaDriver for `endpoint` with validated options, as the bridge would build it."""
    ctx = DriverContext(
        device_id=device_id,
        endpoint=endpoint,
        options=OpcUaOptions(**options),
        logger=logging.getLogger(f"test.opcua.{device_id}"),
    )
    return OpcUaDriver(ctx)


def assign_aliases(signals: Sequence[Signal], first: int = 1) -> None:
    """Number signals the way the registry does before streaming."""
    for offset, signal in enumerate(signals):
        signal.alias = first + offset


def by_path(description: DeviceDescription) -> dict[str, Signal]:
    return {s.path: s for s in description.signals}


class ThreadedSimulator:
    """A RobotSimulator in its own thread and event loop, shared by the read-only tests of a module.

    asyncua needs ~1 s to load the standard address space per server; tests that do not change the
    robot's state share one server instead of paying that each time.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="opcua-sim-thread", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.sim = RobotSimulator(**kwargs)

    def start(self) -> RobotSimulator:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("simulator thread did not start")
        if self._error is not None:
            raise self._error
        return self.sim

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)

    def freeze(self, seconds: float) -> None:
        """Hang the server for `seconds`: its loop blocks, connections stay open, nothing is answered."""
        self._loop.call_soon_threadsafe(time.sleep, seconds)

    async def fresh(self) -> ThreadedSimulator:
        """Serving again (a test may have stopped it) and back in its power-on state."""
        await self.run(self._reset())
        return self

    async def _reset(self) -> None:
        if not self.sim.running:
            await self.sim.start()
        await self.sim.reset()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine (e.g. a simulator helper) on the simulator's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.sim.start())
        except BaseException as exc:  # reported to start() in the test thread
            self._error = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.sim.stop())
        self._loop.close()
