"""The publish pipeline of one MQTT session: births first, then live payloads and the replayed backlog.

Live payloads and replayed ones alternate, so live data keeps flowing while a backlog drains. Every
publish passes one token bucket (the publish rate limit) and a window of payloads sent and not yet
proven read by the broker (`max_inflight`). A stored payload leaves the outbox only when a PUBACK
later on the same connection proves the broker read it (see linebridge.uplink.link); one not proven
when the session ends is sent again (flagged historical) in a later session.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from linebridge.errors import LinkError
from linebridge.pacing import TokenBucket
from linebridge.uplink.encoder import SparkplugEncoder, now_ms, trailer
from linebridge.uplink.link import Link
from linebridge.uplink.outbox import Outbox
from linebridge.uplink.outbox_types import Row
from linebridge.uplink.topics import Topics

log = logging.getLogger(__name__)

REPLAY_CHUNK = 16  # stored payloads read per step (each up to the payload cap)
YIELD_EVERY = 16  # publishes in a row without any wait before the sender lets other tasks run


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


class Publisher:
    """Queues and sends the messages of the current session; idle between sessions."""

    def __init__(
        self, outbox: Outbox, topics: Topics, max_rate: float, max_inflight: int, data_qos: int = 0
    ) -> None:
        self.outbox, self.topics, self.data_qos = outbox, topics, data_qos
        self.limiter = TokenBucket(max_rate, max(1.0, max_rate / 10))  # a burst of a tenth of a second
        # Below half of paho's 16-bit packet ids: a QoS 0 publish never reuses the id of a pending checkpoint.
        self.max_inflight = min(max_inflight, 30_000)
        self.live_limit = max(4, int(max_rate))  # about a second of publishes queued live at most
        self.traffic = Traffic()
        self.client: Link | None = None
        self._sent: deque[tuple[int, Row]] = deque()  # (link position, row) sent, not yet proven
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
        self.proof_every = max(1, max_inflight // 2)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- session -----------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """A session is running."""
        return self.client is not None

    def begin(self, client: Link, births: list[Transient]) -> None:
        """Start a session: the birth sequence, then live data and the backlog."""
        self.client = client
        client.on_checkpoint = self.limiter.charge  # checkpoints count against max_publish_rate
        # A checkpoint per this many data publishes: half the window, and within 3 % of the rate budget.
        rate_bound = int(self.limiter.rate * client.settings.proof_interval)
        self.proof_every = max(1, min(self.max_inflight // 2, rate_bound))
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
        if not isinstance(exc, OSError | LinkError):  # a bug, not the network: start a fresh session
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
        self._sent.clear()
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
            if self.client is not None:
                self.client.idle()  # nothing to send: prove what went out
            self._wake.clear()
            await self._wake.wait()

    async def _run(self, link: Link) -> None:
        burst = 0
        while True:
            item, replayed = await self._next()
            if isinstance(item, Transient):
                await self.limiter.acquire()
                if item.verb == "NBIRTH":
                    self._seq = 0  # tck-id-payloads-nbirth-seq: NBIRTH has seq 0
                topic = (
                    self.topics.node(item.verb)
                    if item.verb == "NBIRTH"
                    else self.topics.device(item.verb, item.device_id)
                )
                # tck-id-topics-nbirth-mqtt, tck-id-topics-dbirth-mqtt, tck-id-topics-ddeath-mqtt:
                # QoS 0, retain false
                link.publish(topic, item.body + trailer(now_ms(), self._take_seq()), qos=0)
            elif self._sendable(item):
                while len(self._sent) >= self.max_inflight:
                    link.checkpoint()
                    self._acks.clear()
                    await self._acks.wait()
                await self.limiter.acquire()
                self._send(link, item, replayed)
                if link.uncovered >= self.proof_every:
                    link.checkpoint()
            burst += 1
            if burst >= YIELD_EVERY:  # the socket writes and PUBACKs come in while we wait anyway;
                burst = 0  # a long queue without waits yields now and then, not after every message
                await asyncio.sleep(0)

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

    def _send(self, link: Link, row: Row, replayed: bool) -> None:
        body = row.body
        if replayed:
            self.traffic.replayed_messages += 1
            if not row.historical:  # went out live before and was never acknowledged
                body = SparkplugEncoder.as_historical(body)
            if row.id in self._unacked_sent:
                self.traffic.resent_samples += row.samples
        # tck-id-topics-ddata-mqtt, tck-id-topics-ndata-mqtt: QoS 0, retain false (data_qos 1: outside the spec)
        position = link.publish(
            self.topics.data(row.device_id), body + trailer(now_ms(), self._take_seq()), qos=self.data_qos
        )
        self._sent.append((position, row))
        self._unacked_sent.add(row.id)

    def _take_seq(self) -> int:
        """Sparkplug 3.0, Payloads > Payload (seq): one sequence number per message, 0-255 wrapping."""
        seq = self._seq
        self._seq = (seq + 1) % 256
        return seq

    def proven(self, position: int) -> None:
        """The link proved every publish up to `position` read by the broker: those rows leave the outbox."""
        sent = self._sent
        while sent and sent[0][0] <= position:
            self._acked(sent.popleft()[1])
        self._acks.set()

    def _acked(self, row: Row) -> None:
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
