"""A fault-injecting TCP proxy for HIL rigs: it sits between the bridge and one device on the network
path only, so the bridge does not know it is being tested.

Faults act per direction ("up" = bridge to device, "down" = device to bridge, "both"):

* `latency`   every chunk is delivered `ms` (+ uniform jitter up to `jitter_ms`) after it arrived, in order;
* `bandwidth` chunks are paced to `bytes_per_second`;
* `stall`     nothing is forwarded and nothing read (the peers' sockets stay open, TCP backs up);
* `blackhole` one direction is dead: what arrives is read and thrown away (a half-open link);
* `corrupt`   the next `count` bytes are each flipped (XOR 0xFF): exactly `count` bytes change;
* `truncate`  the next chunk is cut to its first `keep` bytes (half when unset), then the link closes;
* `reset`     every open connection is aborted with an RST (instant; no duration);
* `refuse`    new connections are accepted and reset at once (a port nobody serves, as TCP shows it).

Each fault is a `Fault` value; `inject` starts it and returns a handle that `release` ends. Faults of
different kinds combine; the scenario loader refuses contradicting ones on one link.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

CHUNK = 65536
PACING_SLICE = 1024  # bytes per paced write under a bandwidth cap
PACING_CATCH_UP = 0.05  # seconds of lateness a paced link may make up with a burst


class Direction(StrEnum):
    """Which way a fault acts."""

    UP = "up"  # bridge -> device
    DOWN = "down"  # device -> bridge
    BOTH = "both"

    def covers(self, way: Direction) -> bool:
        """True when a fault in this direction acts on traffic going `way`."""
        return self is Direction.BOTH or self is way


class FaultKind(StrEnum):
    """The TCP faults the proxy can inject."""

    LATENCY = "latency"
    BANDWIDTH = "bandwidth"
    STALL = "stall"
    BLACKHOLE = "blackhole"
    CORRUPT = "corrupt"
    TRUNCATE = "truncate"
    RESET = "reset"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Fault:
    """One fault on a link; which parameters matter depends on `kind`."""

    kind: FaultKind
    direction: Direction = Direction.BOTH
    ms: float = 0.0  # latency
    jitter_ms: float = 0.0  # latency
    bytes_per_second: float = 0.0  # bandwidth
    count: int = 0  # corrupt: bytes to flip
    keep: int = -1  # truncate: bytes of the next chunk that pass (-1: half)

    def __post_init__(self) -> None:
        problems = {
            FaultKind.LATENCY: self.ms < 0 or self.jitter_ms < 0,
            FaultKind.BANDWIDTH: self.bytes_per_second <= 0,
            FaultKind.CORRUPT: self.count <= 0,
        }
        if problems.get(self.kind, False):
            raise ValueError(f"fault {self.kind}: impossible parameters {self}")


@dataclass
class _Active:
    """An injected fault and what it still has to do (bytes left to corrupt, a chunk to truncate)."""

    fault: Fault
    left: int = 0
    done: bool = False


@dataclass
class ProxyStats:
    """What went through the proxy, per direction."""

    connections: int = 0
    refused: int = 0
    resets: int = 0
    forwarded: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0})
    discarded: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0})
    corrupted: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0})


class FaultProxy:
    """Listens on `host:port` (0 picks a free port) and forwards every connection to the target."""

    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.host, self._port = host, port
        self.stats = ProxyStats()
        self.connected = asyncio.Event()  # set at the first connection forwarded to the target
        self.first_connection: float | None = None  # time.monotonic() of that first connection
        self._active: list[_Active] = []
        self._changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._rng = random.Random(0)

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        assert self._server is not None, "start() first"
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        """Listen (OSError when the port is taken)."""
        self._server = await asyncio.start_server(self._accept, self.host, self._port)

    async def stop(self) -> None:
        """Close the listener and every link."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for link in list(self._links):
            link.close(reset=False)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def inject(self, fault: Fault) -> _Active:
        """Start a fault now; `release(handle)` ends it. A reset acts at once and needs no release."""
        handle = _Active(fault, left=fault.count)
        if fault.kind is FaultKind.RESET:
            for link in list(self._links):
                link.close(reset=True)
                self.stats.resets += 1
            handle.done = True
            return handle
        self._active.append(handle)
        self._wake()
        return handle

    def release(self, handle: _Active) -> None:
        """End a fault (a no-op for one that already ended)."""
        handle.done = True
        if handle in self._active:
            self._active.remove(handle)
        self._wake()

    def clear(self) -> None:
        """End every fault."""
        for handle in list(self._active):
            self.release(handle)

    def active(self, kind: FaultKind, way: Direction) -> list[_Active]:
        """The live faults of `kind` acting on traffic going `way`."""
        return [
            h for h in self._active if h.fault.kind is kind and h.fault.direction.covers(way) and not h.done
        ]

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        """Wait until a fault starts or ends."""
        await self._changed.wait()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if any(h.fault.kind is FaultKind.REFUSE and not h.done for h in self._active):
            self.stats.refused += 1
            _abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self.stats.refused += 1
            _abort(writer)
            return
        self.stats.connections += 1
        if self.first_connection is None:
            self.first_connection = time.monotonic()
            self.connected.set()
        link = _Link(self, (reader, writer), (up_reader, up_writer))
        self._links.add(link)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await link.run()
        finally:
            self._links.discard(link)
            self._tasks.discard(task)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with an RST instead of a FIN (SO_LINGER 0), as a crashed or refusing peer does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Link:
    """One proxied connection: a pump per direction."""

    def __init__(self, proxy: FaultProxy, client, upstream) -> None:  # type: ignore[no-untyped-def]
        self.proxy = proxy
        self.client, self.upstream = client, upstream
        self.closed = False

    async def run(self) -> None:
        ways = [
            _Pump(self, Direction.UP, self.client[0], self.upstream[1]),
            _Pump(self, Direction.DOWN, self.upstream[0], self.client[1]),
        ]
        tasks = [asyncio.create_task(p.run()) for p in ways]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.close(reset=False)

    def close(self, reset: bool) -> None:
        if self.closed:
            return
        self.closed = True
        for _, writer in (self.client, self.upstream):
            if reset:
                _abort(writer)
            else:
                writer.close()


class _Pump:
    """Copies one direction, applying the faults that act on it."""

    def __init__(self, link: _Link, way: Direction, reader: asyncio.StreamReader, writer) -> None:  # type: ignore[no-untyped-def]
        self.link, self.way, self.reader, self.writer = link, way, reader, writer
        self.proxy = link.proxy
        # (when due, bytes, then): then is "" (more follows), "eof" (pass the FIN on) or "close".
        self._due: deque[tuple[float, bytes, str]] = deque()
        self._ready = asyncio.Event()
        self._sent_at = 0.0  # bandwidth pacing: when the link is free again

    async def run(self) -> None:
        """Read, transform, queue with its delay; a delivery task writes in order."""
        delivery = asyncio.create_task(self._deliver())
        try:
            while not self.link.closed:
                await self._not_stalled()
                data = await self.reader.read(CHUNK)
                await self._not_stalled()  # a stall that began while this read waited holds it too
                if not data:
                    self._queue(b"", "eof")
                    break
                self._transform(data)
            await delivery
        finally:
            delivery.cancel()
            await asyncio.gather(delivery, return_exceptions=True)

    def _queue(self, data: bytes, then: str = "") -> None:
        self._due.append((time.monotonic() + self._delay(), data, then))
        self._ready.set()

    async def _not_stalled(self) -> None:
        while self.proxy.active(FaultKind.STALL, self.way):
            await self.proxy.changed()

    def _transform(self, data: bytes) -> None:
        """Blackhole, corrupt and truncate, then queue what goes on."""
        way = self.way.value
        if self.proxy.active(FaultKind.BLACKHOLE, self.way):
            self.proxy.stats.discarded[way] += len(data)
            return
        for handle in self.proxy.active(FaultKind.CORRUPT, self.way):
            flip = min(handle.left, len(data))
            data = bytes(b ^ 0xFF for b in data[:flip]) + data[flip:]
            handle.left -= flip
            handle.done = handle.left == 0
            self.proxy.stats.corrupted[way] += flip
        for handle in self.proxy.active(FaultKind.TRUNCATE, self.way):
            handle.done = True  # one frame only
            data = data[: handle.fault.keep if handle.fault.keep >= 0 else len(data) // 2]
            self.proxy.stats.forwarded[way] += len(data)
            self._queue(data, "close")
            return
        self.proxy.stats.forwarded[way] += len(data)
        self._queue(data)

    def _delay(self) -> float:
        seconds = 0.0
        for handle in self.proxy.active(FaultKind.LATENCY, self.way):
            jitter = self.proxy._rng.uniform(0, handle.fault.jitter_ms) if handle.fault.jitter_ms else 0.0
            seconds += (handle.fault.ms + jitter) / 1000
        return seconds

    async def _deliver(self) -> None:
        """Write chunks when they are due, in order, paced by any bandwidth cap."""
        while True:
            while not self._due:
                self._ready.clear()
                await self._ready.wait()
            due, data, then = self._due[0]
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            await self._not_stalled()
            self._due.popleft()
            await self._send(data)
            if then == "eof":
                with contextlib.suppress(OSError):
                    self.writer.write_eof()
                return
            if then == "close":
                self.link.close(reset=False)
                return

    async def _send(self, data: bytes) -> None:
        """Write `data`; under a bandwidth cap in slices, each leaving when the link has carried the one
        before (a slice of n bytes takes n / rate seconds on the wire)."""
        step = PACING_SLICE if self.proxy.active(FaultKind.BANDWIDTH, self.way) else len(data)
        for offset in range(0, len(data), max(step, 1)):
            piece = data[offset : offset + step]
            ready = self._paced(len(piece))
            if ready > time.monotonic():
                await asyncio.sleep(ready - time.monotonic())
            self.writer.write(piece)
            await self.writer.drain()

    def _paced(self, size: int) -> float:
        """When a slice of `size` bytes has passed the tightest bandwidth cap in force."""
        caps = [h.fault.bytes_per_second for h in self.proxy.active(FaultKind.BANDWIDTH, self.way)]
        now = time.monotonic()
        if not caps:
            self._sent_at = now
            return now
        # A late wake-up keeps its credit for up to PACING_CATCH_UP s, so the average stays at the cap.
        self._sent_at = max(now - PACING_CATCH_UP, self._sent_at) + size / min(caps)
        return self._sent_at
