"""One supervisor per device: connect, stream, notice failure, back off, reconnect."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from linebridge.devices.loglimit import RepeatLimiter
from linebridge.drivers.base import DeviceDescription, Driver, StreamHints, all_signals
from linebridge.drivers.tasks import RECANCEL_SECONDS
from linebridge.errors import IdentityChanged, LinebridgeError, Unavailable, describe
from linebridge.model import AlarmReport, DeviceState, SampleBatch
from linebridge.pacing import Backoff
from linebridge.registry import DeviceRegistry
from linebridge.telemetry.bus import TelemetryBus
from linebridge.telemetry.guard import GuardSettings, ValueGuard

log = logging.getLogger(__name__)

DriverFactory = Callable[[str], Driver]  # endpoint -> a new driver instance
# Checks a connected device before it is used: (device id, endpoint, description); IdentityChanged refuses it.
Verify = Callable[[str, str, DeviceDescription], Awaitable[None]]


class _Channel:
    """The sink a driver streams into: publishes to the bus, reports degraded state."""

    def __init__(self, session: DeviceSession) -> None:
        self._session = session
        self._bus = session.bus
        self._guard = session.guard

    def publish(self, batch: SampleBatch) -> None:
        self._session.heard = time.monotonic()
        self._bus.publish(self._guard.check(batch))

    def alive(self) -> None:
        self._session.heard = time.monotonic()

    def degraded(self, reason: str | None) -> None:
        self._session.set_degraded(reason)

    def alarm(self, report: AlarmReport) -> None:
        if self._session.on_alarm is not None:
            self._session.on_alarm(self._session.device_id, report)


class DeviceSession:
    """Owns the driver of one device and its connection lifecycle."""

    def __init__(
        self,
        device_id: str,
        factory: DriverFactory,
        registry: DeviceRegistry,
        bus: TelemetryBus,
        hints: StreamHints,
        backoff: Backoff,
        connect_timeout: float,
        on_reconnect: Callable[[str], None] | None = None,
        on_alarm: Callable[[str, AlarmReport], None] | None = None,
        verify: Verify | None = None,
        guard: ValueGuard | None = None,
        liveness: float | None = None,
        healthy_after: float = 30.0,
    ) -> None:
        self.device_id = device_id
        self.registry, self.bus = registry, bus
        self._factory, self._hints, self._backoff = factory, hints, backoff
        self._connect_timeout = connect_timeout
        self._on_reconnect = on_reconnect
        self.on_alarm = on_alarm
        self._verify = verify
        self.held = False  # ended on an identity change: waits for an approval or its last good endpoint
        self.driver: Driver | None = None
        # The driver boundary: size, finiteness, range and timestamp checks on every batch.
        self.guard = guard or ValueGuard(device_id, GuardSettings())
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self._stopping = False
        self.connections = 0
        # Seconds of silence (no batch, no keep-alive) after which the link counts as hung: None takes
        # the driver's default, 0 turns the watchdog off.
        self._liveness = liveness
        # The backoff starts again from its first step only after a connection was healthy this long.
        self._healthy_after = healthy_after
        self._online_since: float | None = None
        self.heard = 0.0  # monotonic time of the last batch or keep-alive
        self.attempts = 0  # connect attempts, for tests and diagnostics
        self._logs = RepeatLimiter(log)

    def start(self) -> None:
        """Start the supervisor task."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"session:{self.device_id}")

    async def stop(self, timeout: float = 10.0) -> None:
        """Cancel the supervisor and close the driver; a driver stuck in cleanup cannot hang shutdown.

        The cancel is repeated until the task ends: on Python 3.11 `asyncio.wait_for` can swallow a
        cancellation that arrives just as its inner call finishes (seen here: a session kept retrying
        after stop), and the stop flag ends the retry loop at its next turn in any case.
        """
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not task.done() and loop.time() < deadline:
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            if not task.done():
                log.error(
                    "device %s: session did not stop within %g s (driver stuck in cleanup)",
                    self.device_id,
                    timeout,
                )
        await self._close_driver()

    def restart(self) -> None:
        """Drop the connection now and reconnect (e.g. the device moved to a new endpoint)."""
        if self._task is not None:
            self._task.cancel()
            self._task = asyncio.create_task(
                self._restart_after(self._task), name=f"session:{self.device_id}"
            )

    async def _restart_after(self, old: asyncio.Task[None]) -> None:
        await asyncio.gather(old, return_exceptions=True)
        await self._close_driver()
        self._failures = 0
        await self._supervise()

    def set_degraded(self, reason: str | None) -> None:
        """Mark the device DEGRADED with a reason, or ONLINE again when the reason is empty."""
        record = self.registry.find(self.device_id)
        if record is None or not record.available:
            return
        if reason:
            self.registry.set_state(self.device_id, DeviceState.DEGRADED, reason)
        else:
            self.registry.set_state(self.device_id, DeviceState.ONLINE)

    def _set_state(self, state: DeviceState, reason: str = "") -> None:
        if self.registry.find(self.device_id) is not None:
            self.registry.set_state(self.device_id, state, reason)

    async def _supervise(self) -> None:
        self.held = False
        while not self._stopping:
            try:
                await self._connect_and_stream()
                reason = "stream ended"
            except asyncio.CancelledError:
                raise
            except IdentityChanged as exc:  # not the approved device: never used, no retries
                await self._close_driver()
                self.held = True
                self._set_state(DeviceState.DISCOVERED, str(exc))
                log.error("device %s: %s", self.device_id, exc)
                return
            except Exception as exc:  # the driver raised: the session decides what happens
                text = describe(exc, self._connect_timeout)
                reason = text if isinstance(exc, LinebridgeError) else f"{type(exc).__name__}: {text}"
            await self._close_driver()
            self._set_state(DeviceState.OFFLINE, reason)
            online, self._online_since = self._online_since, None
            if online is not None and time.monotonic() - online >= self._healthy_after:
                self._failures = 0  # a connection that held for a while ends the backoff
            if self._failures == 0:  # log a failure once, and its recovery once
                self._logs.log(
                    logging.WARNING,
                    "offline",
                    "device %s offline: %s (retrying with backoff)",
                    self.device_id,
                    reason,
                )
            delay = self._backoff.delay(self._failures)
            self._failures += 1
            await asyncio.sleep(delay)

    async def _connect_and_stream(self) -> None:
        record = self.registry.get(self.device_id)
        self._set_state(DeviceState.CONNECTING)
        self.attempts += 1
        driver = self.driver = self._factory(record.endpoint)
        try:
            description = await asyncio.wait_for(driver.connect(), self._connect_timeout)
        except TimeoutError:
            raise Unavailable(
                f"connect to {record.endpoint} timed out after {self._connect_timeout:g} s"
            ) from None
        if self._verify is not None:
            await self._verify(self.device_id, record.endpoint, description)
        self.registry.set_description(self.device_id, description, driver.diagnostics())
        self.guard.use(description.signals)
        self._set_state(DeviceState.ONLINE)
        self.connections += 1
        self._online_since = self.heard = time.monotonic()
        if self._failures:
            self._logs.log(
                logging.INFO,
                "online",
                "device %s back online after %d failed attempt(s)",
                self.device_id,
                self._failures,
            )
            if self._on_reconnect is not None:
                self._on_reconnect(self.device_id)
        bound = self._liveness if self._liveness is not None else driver.liveness(self._hints)
        streaming = driver.stream(all_signals(description), _Channel(self), self._hints)
        if bound:
            await self._watch(streaming, bound)
        else:
            await streaming

    async def _watch(self, streaming: Coroutine[Any, Any, None], bound: float) -> None:
        """Run the driver's stream; raise Unavailable when the device is silent for `bound` seconds.

        Silence is no batch and no keep-alive (`sink.alive()`): a hung peer whose socket stays open
        (SIGSTOP, a frozen controller) is noticed within `bound`, not only when TCP gives up.
        """
        task = asyncio.ensure_future(streaming)
        step = min(bound / 4, 0.25)
        try:
            while True:
                woke_by = time.monotonic() + step
                done, _ = await asyncio.wait({task}, timeout=step)
                if done:
                    return task.result()
                now = time.monotonic()
                if now - woke_by > step:  # this loop itself stalled: let pending reads run before judging
                    continue
                silent = now - self.heard
                if silent > bound:
                    raise Unavailable(
                        f"no data or keep-alive from the device for {silent:.1f} s "
                        f"(liveness bound {bound:g} s): the device or the link hangs"
                    )
        finally:
            if not task.done():
                task.cancel()
                await settle(task, 5.0)

    async def _close_driver(self) -> None:
        driver, self.driver = self.driver, None
        if driver is not None:
            try:
                await asyncio.wait_for(driver.close(), 5.0)
            except Exception as exc:
                log.debug("device %s: close failed: %s", self.device_id, exc)


async def settle(task: asyncio.Task[None], timeout: float) -> None:
    """Wait up to `timeout` s for a cancelled task to finish its cleanup, even while our own caller repeats
    its cancel (stop() does, every 0.1 s): otherwise a driver's stream could outlive its stopped session
    (seen as leaked UrDriver.stream tasks after a stop under load). The task is cancelled again every
    RECANCEL_SECONDS, as `drivers.tasks` does for a driver's jobs: on Python 3.11 `asyncio.wait_for` inside
    a stream can swallow a cancel that lands as its inner call finishes. A cancel that arrived meanwhile is
    raised again at the end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    cancelled = False
    while not task.done() and loop.time() < deadline:
        try:
            await asyncio.wait({task}, timeout=min(RECANCEL_SECONDS, deadline - loop.time()))
        except asyncio.CancelledError:
            cancelled = True
        if not task.done():
            task.cancel()
    if cancelled:
        raise asyncio.CancelledError
