"""`Client`: the blocking client for scripts and notebooks; it runs an `AsyncClient` on its own loop thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from linebridge.client.aio import AsyncClient, BridgeInfo
from linebridge.client.batch import Batch, Sample
from linebridge.client.commands import Command, CommandEvent, CommandState, Jog
from linebridge.client.devices import Device, DeviceEvent
from linebridge.client.subscription import Notice, Subscription

T = TypeVar("T")
Value = float | int | bool | str


class _Loop:
    """An event loop on a daemon thread; run() blocks the caller until a coroutine is done."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="linebridge-client", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if threading.current_thread() is self.thread:
            raise RuntimeError(
                "a blocking Client call from its own loop thread (use AsyncClient in callbacks)"
            )
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def iterate(self, source: AsyncIterator[T]) -> Iterator[T]:
        """A blocking iterator over an async iterator that lives on the loop."""
        try:
            while True:
                try:
                    yield self.run(anext(source))  # type: ignore[arg-type]
                except StopAsyncIteration:
                    return
        finally:
            if self.loop.is_running() and hasattr(source, "aclose"):
                self.run(source.aclose())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


class SyncSubscription:
    """A Subscription for blocking code: iterate it for Batches; close() or leave the `with` block to end it."""

    def __init__(self, loop: _Loop, subscription: Subscription) -> None:
        self._loop, self.subscription = loop, subscription

    def __iter__(self) -> Iterator[Batch]:
        return self._loop.iterate(aiter(self.subscription))

    def __enter__(self) -> SyncSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def samples(self) -> Iterator[Sample]:
        """One Sample at a time (small uses)."""
        return self._loop.iterate(self.subscription.samples())

    def history(self, paths: Sequence[str] | None = None, seconds: float | None = None) -> Batch:
        """What the subscription received in the last `seconds`, as one Batch."""

        async def get() -> Batch:
            return self.subscription.history(paths, seconds)

        return self._loop.run(get())

    @property
    def notices(self) -> list[Notice]:
        """Notices so far (sync, catalog, dropped, disconnected, reconnected)."""
        return list(self.subscription.notices)

    @property
    def dropped_total(self) -> int:
        """Samples the bridge dropped for this subscription."""
        return self.subscription.dropped_total

    def close(self) -> None:
        """End the stream."""
        self._loop.loop.call_soon_threadsafe(self.subscription.close)


class SyncCommand:
    """A Command for blocking code."""

    def __init__(self, loop: _Loop, command: Command) -> None:
        self._loop, self.command = loop, command
        self.id, self.device_id, self.idempotency_key = command.id, command.device_id, command.idempotency_key

    @property
    def state(self) -> CommandState:
        """The latest state seen."""
        return self.command.state

    def events(self) -> Iterator[CommandEvent]:
        """Every event of the command until it ends."""
        return self._loop.iterate(self.command.events())

    def wait(self, timeout: float | None = None) -> tuple[Value, ...]:
        """The result once the command succeeded; the typed exception otherwise."""
        return self._loop.run(self.command.wait(timeout))

    def cancel(self) -> CommandState:
        """Ask the bridge to cancel the command."""
        return self._loop.run(self.command.cancel())


class SyncJog:
    """A Jog for blocking code: `with client.jog("robot-1") as jog: jog.move_joints([...])`."""

    def __init__(self, loop: _Loop, jog: Jog) -> None:
        self._loop, self.jog = loop, jog

    def __enter__(self) -> SyncJog:
        self._loop.run(self.jog.__aenter__())
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.run(self.jog.__aexit__(*exc))

    def move_joints(
        self, positions: Sequence[float], speed: float = 0.0, acceleration: float = 0.0
    ) -> CommandEvent:
        """Send a joint-space target."""
        return self._loop.run(self.jog.move_joints(positions, speed, acceleration))

    def move_linear(
        self, pose: Sequence[float], speed: float = 0.0, acceleration: float = 0.0
    ) -> CommandEvent:
        """Send a Cartesian target."""
        return self._loop.run(self.jog.move_linear(pose, speed, acceleration))


class Client:
    """The blocking client: the same calls as AsyncClient (same arguments), usable from any thread."""

    def __init__(self, target: str = "127.0.0.1:50051", **options: Any) -> None:
        self._loop = _Loop()

        async def open_client() -> AsyncClient:
            return AsyncClient(target, **options)

        try:
            self.aio = self._loop.run(open_client())
        except BaseException:
            self._loop.stop()
            raise
        self.target = target

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel and stop the loop thread."""
        if self._loop.loop.is_running():
            self._loop.run(self.aio.close())
            self._loop.stop()

    def info(self) -> BridgeInfo:
        """Version, uptime, counters and warnings of the bridge."""
        return self._loop.run(self.aio.info())

    def uplink_status(self) -> Any:
        """State of the Industrial Cloud uplink."""
        return self._loop.run(self.aio.uplink_status())

    def locate_load(self, load_id: str) -> Any:
        """Where a load is: the AGV with it (or that dropped it), position, map, zones, last seen."""
        return self._loop.run(self.aio.locate_load(load_id))

    def transporters(self) -> list[Any]:
        """Every AGV: state, position, loads, battery, order progress, errors."""
        return self._loop.run(self.aio.transporters())

    def zones(self, map_id: str = "") -> list[Any]:
        """The configured zones with their polygons, of one map or of all."""
        return self._loop.run(self.aio.zones(map_id))

    def approve(self, device_id: str) -> Device:
        """Let a device found through mDNS connect (admin role)."""
        return self._loop.run(self.aio.approve(device_id))

    def devices(self, glob: str = "", signals: bool = True) -> list[Device]:
        """Devices whose id matches `glob`."""
        return self._loop.run(self.aio.devices(glob, signals))

    def device(self, device_id: str) -> Device:
        """One device."""
        return self._loop.run(self.aio.device(device_id))

    def watch_devices(self, include_existing: bool = True) -> Iterator[DeviceEvent]:
        """Device events as they happen."""
        return self._loop.iterate(self.aio.watch_devices(include_existing))

    def subscribe(self, paths: Sequence[str], **options: Any) -> SyncSubscription:
        """Batches of the signals matching `paths` (options as AsyncClient.subscribe)."""

        async def make() -> Subscription:
            return self.aio.subscribe(paths, **options)

        return SyncSubscription(self._loop, self._loop.run(make()))

    def read(self, paths: Sequence[str], *, from_device: bool = False) -> Batch:
        """Current values of the signals matching `paths`."""
        return self._loop.run(self.aio.read(paths, from_device=from_device))

    def history(self, paths: Sequence[str] | None = None, seconds: float = 60.0) -> Batch:
        """What this client's running subscriptions received in the last `seconds`."""

        async def get() -> Batch:
            return self.aio.history(paths, seconds)

        return self._loop.run(get())

    def execute(self, device: str, **action: Any) -> SyncCommand:
        """Send one command (arguments as AsyncClient.execute) and return its handle."""
        return SyncCommand(self._loop, self._loop.run(self.aio.execute(device, **action)))

    def command(self, command_id: str) -> CommandEvent:
        """The state of a command."""
        return self._loop.run(self.aio.command(command_id))

    def commands(self, device: str = "", limit: int = 100) -> list[CommandEvent]:
        """Recent commands, newest first."""
        return self._loop.run(self.aio.commands(device, limit))

    def jog(self, device: str, deadman_interval: float = 0.5) -> SyncJog:
        """A deadman-held Jog stream as a context manager."""
        return SyncJog(self._loop, self.aio.jog(device, deadman_interval))
