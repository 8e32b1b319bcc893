"""The publish pipeline of one MQTT session: births first, then live payloads and the replayed backlog.

Live payloads and replayed ones alternate, so live data keeps flowing while a backlog drains. Every
publish passes one token bucket (the publish rate limit) and a cap on QoS 1 messages awaiting PUBACK.
A stored payload leaves the outbox only on its PUBACK; one sent but not acknowledged when the session
ends is sent again (flagged historical) in a later session.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from functools import partial

from linebridge.uplink.encoder import SparkplugEncoder, now_ms, trailer
from linebridge.uplink.mqtt import MqttClient, MqttError
from linebridge.uplink.outbox import Outbox
from linebridge.uplink.outbox_types import Row
from linebridge.uplink.topics import Topics

log = logging.getLogger(__name__)

REPLAY_CHUNK = 16  # stored payloads read per step (each up to the payload cap)


@dataclass(frozen=True, slots=True)
class Transient:
    """A message that is never stored: a birth or death certificate describes the present."""

    verb: str  # NBIRTH, DBIRTH, DDEATH
    device_id: str
    body: bytes


@dataclass(slots=True)
class Traffic:
    """Counters of what went out."""

    published_messages: int = 0
    published_samples: int = 0
    replayed_messages: int = 0
    resent_samples: int = 0


class RateLimiter:
    """Token bucket: `rate` publishes per second with a burst of a tenth of a second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, rate / 10)
        self.tokens = self.burst
        self.stamp = 0.0

    async def acquire(self) -> None:
        """Wait for a token."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            await asyncio.sleep((1 - self.tokens) / self.rate)
            # Credit the time actually slept (sleeps overshoot), or the rate falls short of the limit.
            now = loop.time()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        self.tokens -= 1


class Publisher:
    """Queues and sends the messages of the current session; idle between sessions."""

    def __init__(self, outbox: Outbox, topics: Topics, max_rate: float, max_inflight: int) -> None:
        self.outbox, self.topics = outbox, topics
        self.limiter = RateLimiter(max_rate)
        self.max_inflight = max_inflight
        self.live_limit = max(4, int(max_rate))  # about a second of publishes queued live at most
        self.traffic = Traffic()
        self.client: MqttClient | None = None
        self._births: deque[Transient] = deque()
        self._live: deque[Row | Transient] = deque()
        self._replay_q: deque[Row] = deque()
        self._queued: set[int] = set()  # row ids queued or awaiting PUBACK in this session
        self._unacked_sent: set[int] = set()  # row ids sent without PUBACK (maybe delivered)
        self._born: set[str] = set()
        self._deferred: set[str] = set()  # devices with stored rows that wait for their DBIRTH
        self._dying: dict[str, Transient] = {}  # DDEATHs held until the device's stored rows are sent
        self._seq = 0
        self._turn = False
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._acks = asyncio.Event()
        self._replay_wanted = asyncio.Event()
        self._replay_restart = True
        self._tasks: set[asyncio.Task[None]] = set()

    # -- session -----------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """A session is running."""
        return self.client is not None

    def begin(self, client: MqttClient, births: list[Transient]) -> None:
        """Start a session: the birth sequence, then live data and the backlog."""
        self.client = client
        self.rebirth(births)
        for coro, name in ((self._run(client), "uplink-publish"), (self._replay(), "uplink-replay")):
            task = asyncio.create_task(coro, name=name)
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        if not isinstance(exc, OSError | MqttError):  # a bug, not the network: start a fresh session
            log.error("uplink: %s failed; reconnecting", task.get_name(), exc_info=exc)
        if self.client is not None:
            self.client.abort(f"{task.get_name()} stopped: {exc!r}")

    async def end(self) -> None:
        """The session is over: whatever was not acknowledged stays in the outbox for the next one."""
        self.client = None
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._births.clear()
        self._live.clear()
        self._replay_q.clear()
        self._queued.clear()
        self._born.clear()
        self._deferred.clear()
        self._dying.clear()
        self._unacked_sent = {i for i in self._unacked_sent if self.outbox.holds(i)}

    async def drained(self, timeout: float) -> None:
        """Wait (bounded) until nothing is queued live and every sent payload is acknowledged."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self.active and (self._live or self._births or self._queued) and loop.time() < end:
            self._acks.clear()
            try:
                await asyncio.wait_for(self._acks.wait(), max(0.0, end - loop.time()))
            except TimeoutError:
                return

    # -- feeding (called by the uplink) ------------------------------------------------------
    @property
    def live_pending(self) -> int:
        """Live messages queued and not yet sent."""
        return len(self._live)

    def is_born(self, device_id: str) -> bool:
        """Whether the device's DBIRTH went out (or is queued) in this session."""
        return device_id in self._born

    def is_dying(self, device_id: str) -> bool:
        """Offline, with its DDEATH held until its stored data is out."""
        return device_id in self._dying

    def accepts_live(self, device_id: str) -> bool:
        """Whether new data of this device can go out live now (else it is stored as historical)."""
        return (
            self.client is not None
            and (not device_id or device_id in self._born)
            and len(self._live) < self.live_limit
        )

    def push(self, row: Row) -> None:
        """Queue a stored payload to go out live."""
        self._queued.add(row.id)
        self._live.append(row)
        self._wake.set()

    def push_transient(self, item: Transient) -> None:
        """A DBIRTH or DDEATH, in order with the device's data already queued."""
        device = item.device_id
        if item.verb == "DBIRTH":
            self._dying.pop(device, None)
            self._born.add(device)
            if device in self._deferred:
                self._deferred.discard(device)
                self.want_replay(from_start=True)
        elif device in self._born and self.outbox.per_device.get(device):
            # Its stored data goes out first: a DDEATH ends the device's stream at the consumer.
            self._dying[device] = item
            self.want_replay()
            return
        else:
            self._born.discard(device)
        self._live.append(item)
        self._wake.set()

    def rebirth(self, births: list[Transient]) -> None:
        """Sparkplug 3.0, Operational Behavior > Commands: stop DATA, send NBIRTH and every DBIRTH.

        A DDEATH in `births` follows the DBIRTH of a device that is offline but still has stored data.
        """
        self._births = deque(b for b in births if b.verb != "DDEATH")
        self._live = deque(i for i in self._live if isinstance(i, Row))  # stale births and deaths go
        self._born = {b.device_id for b in births if b.verb == "DBIRTH"}
        self._dying = {b.device_id: b for b in births if b.verb == "DDEATH"}
        self.want_replay(from_start=True)
        self._release_deaths()
        self._wake.set()

    def _release_deaths(self) -> None:
        """Send the DDEATH of every dying device whose stored data has all been acknowledged (or dropped)."""
        for device in [d for d in self._dying if not self.outbox.per_device.get(d)]:
            self._born.discard(device)
            self._live.append(self._dying.pop(device))
            self._wake.set()

    def want_replay(self, from_start: bool = False) -> None:
        """Ask the replay to look at the outbox again (from the start: after a birth)."""
        if from_start:
            self._replay_restart = True
        self._replay_wanted.set()

    # -- sending -----------------------------------------------------------------------------
    async def _next(self) -> tuple[Row | Transient, bool]:
        while True:
            if self._births:
                return self._births.popleft(), False
            if self._live and not (self._replay_q and self._turn):
                self._turn = True
                return self._live.popleft(), False
            if self._replay_q:
                self._turn = False
                self._space.set()
                return self._replay_q.popleft(), True
            self._wake.clear()
            await self._wake.wait()

    async def _run(self, client: MqttClient) -> None:
        while True:
            item, replayed = await self._next()
            if isinstance(item, Transient):
                await self.limiter.acquire()
                if item.verb == "NBIRTH":
                    self._seq = 0  # Sparkplug 3.0, Payloads > NBIRTH: seq 0
                topic = (
                    self.topics.node(item.verb)
                    if item.verb == "NBIRTH"
                    else self.topics.device(item.verb, item.device_id)
                )
                client.publish(topic, item.body + trailer(now_ms(), self._take_seq()), qos=0)
            elif self._sendable(item):
                while client.inflight >= self.max_inflight:
                    self._acks.clear()
                    await self._acks.wait()
                await self.limiter.acquire()
                self._send(client, item, replayed)
            await client.drain()

    def _sendable(self, row: Row) -> bool:
        if not self.outbox.holds(row.id):  # dropped (budget, age) while queued
            self._queued.discard(row.id)
            self._release_deaths()
            return False
        if row.device_id and row.device_id not in self._born:
            self._queued.discard(row.id)
            self._deferred.add(row.device_id)
            return False
        return True

    def _send(self, client: MqttClient, row: Row, replayed: bool) -> None:
        body = row.body
        if replayed:
            self.traffic.replayed_messages += 1
            if not row.historical:  # went out live before and was never acknowledged
                body = SparkplugEncoder.as_historical(body)
            if row.id in self._unacked_sent:
                self.traffic.resent_samples += row.samples
        future = client.publish(
            self.topics.data(row.device_id), body + trailer(now_ms(), self._take_seq()), qos=1
        )
        self._unacked_sent.add(row.id)
        assert future is not None
        future.add_done_callback(partial(self._acked, row))

    def _take_seq(self) -> int:
        """Sparkplug 3.0, Payloads > Payload (seq): one sequence number per message, 0-255 wrapping."""
        seq = self._seq
        self._seq = (seq + 1) % 256
        return seq

    def _acked(self, row: Row, future: asyncio.Future[object]) -> None:
        self._acks.set()
        if future.cancelled() or future.exception() is not None:
            return  # stays in the outbox; the next session replays it
        self.outbox.ack(row.id)
        self._queued.discard(row.id)
        self._unacked_sent.discard(row.id)
        self.traffic.published_messages += 1
        self.traffic.published_samples += row.samples
        if self._dying:
            self._release_deaths()

    # -- replay ------------------------------------------------------------------------------
    async def _replay(self) -> None:
        """Walk the outbox in order and queue what this session has not sent yet."""
        cursor = 0
        while True:
            await self._replay_wanted.wait()
            self._replay_wanted.clear()
            if self._replay_restart:
                self._replay_restart, cursor = False, 0
            while not self._replay_restart:
                rows, last = await self.outbox.read(cursor, REPLAY_CHUNK)
                if last == cursor:
                    break
                cursor = last
                for row in rows:
                    await self._queue_replay(row)
            if self._replay_restart:
                self._replay_wanted.set()
            self._release_deaths()

    async def _queue_replay(self, row: Row) -> None:
        if row.id in self._queued or not self.outbox.holds(row.id):
            return
        if row.device_id and row.device_id not in self._born:
            self._deferred.add(row.device_id)
            return
        while len(self._replay_q) >= REPLAY_CHUNK:
            self._space.clear()
            await self._space.wait()
        self._queued.add(row.id)
        self._replay_q.append(row)
        self._wake.set()
