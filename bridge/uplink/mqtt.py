"""A small asyncio MQTT 3.1.1 client: CONNECT with will, QoS 0/1 publish with PUBACK tracking, subscribe.

Written from the MQTT 3.1.1 OASIS standard; section numbers below refer to it. It does what the
Sparkplug edge node needs and nothing more (no QoS 2, no persistent sessions: Sparkplug 3.0 requires
Clean Session = true). One connection per instance; reconnecting means a new instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass

from linebridge.varint import varint

log = logging.getLogger(__name__)

# §2.2.1 control packet types (high nibble of the first byte)
CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14

_CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}

MessageHandler = Callable[[str, bytes], None]


class MqttError(Exception):
    """The broker refused us or broke the protocol."""


class ConnectionLost(MqttError):
    """The connection is gone; whatever was not acknowledged was not delivered (as far as we know)."""


@dataclass(frozen=True, slots=True)
class Will:
    """The message the broker publishes for us when we vanish without DISCONNECT (§3.1.2.5)."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


def _string(text: str | bytes) -> bytes:
    """§1.5.3: two-byte length, then UTF-8."""
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(data)) + data


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + varint(len(body)) + body


class MqttClient:
    """One MQTT connection; callbacks and futures resolve on the event loop that connected it."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        keepalive: int = 30,
        username: str = "",
        password: str = "",
        ssl_context: ssl.SSLContext | None = None,
        will: Will | None = None,
        on_message: MessageHandler | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.keepalive, self.username, self.password = keepalive, username, password
        self.ssl_context, self.will, self.on_message = ssl_context, will, on_message
        self.connect_timeout = connect_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: dict[int, asyncio.Future[object]] = {}  # packet id -> PUBACK / SUBACK
        self._next_id = 0
        self._received_at = 0.0
        self.closed: asyncio.Future[BaseException | None] | None = None

    @property
    def connected(self) -> bool:
        """Connected and not yet lost."""
        return self.closed is not None and not self.closed.done()

    @property
    def inflight(self) -> int:
        """Packets sent and not yet acknowledged (PUBACK, SUBACK)."""
        return len(self._pending)

    # -- connect / disconnect ----------------------------------------------------------------
    async def connect(self) -> None:
        """Open the connection and complete CONNECT/CONNACK; raises OSError, TimeoutError or MqttError."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            self._reader, self._writer = await asyncio.open_connection(
                self.host,
                self.port,
                ssl=self.ssl_context,
                server_hostname=self.host if self.ssl_context is not None else None,
            )
            try:
                self._writer.write(self._connect_packet())
                kind, _flags, body = await self._read_packet()
            except BaseException:
                self._writer.transport.abort()
                raise
        if kind != CONNACK or len(body) != 2 or body[1] != 0:
            self._writer.transport.abort()
            code = body[1] if kind == CONNACK and len(body) == 2 else -1
            raise MqttError(
                f"broker {self.host}:{self.port} refused the connection: "
                f"{_CONNACK_REASONS.get(code, f'unexpected answer (packet type {kind})')}"
            )
        self._received_at = loop.time()
        self.closed = loop.create_future()
        self._spawn(self._read_loop(), "mqtt-read")
        self._spawn(self._ping_loop(), "mqtt-ping")

    def _connect_packet(self) -> bytes:
        flags = 0x02  # §3.1.2.4 Clean Session: Sparkplug 3.0 requires it
        payload = _string(self.client_id)
        if self.will is not None:
            flags |= 0x04 | self.will.qos << 3 | (0x20 if self.will.retain else 0)
            payload += _string(self.will.topic) + _string(self.will.payload)
        if self.username:
            flags |= 0x80
            payload += _string(self.username)
        if self.password:
            flags |= 0x40
            payload += _string(self.password.encode())
        header = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", self.keepalive)
        return _packet(CONNECT, 0, header + payload)

    async def disconnect(self) -> None:
        """Send DISCONNECT (the broker then discards our will) and close."""
        if self.connected and self._writer is not None:
            with contextlib.suppress(OSError, RuntimeError, TimeoutError):
                self._writer.write(_packet(DISCONNECT, 0, b""))
                self._writer.close()  # flushes what is buffered, then closes
                await asyncio.wait_for(self._writer.wait_closed(), 2.0)
        await self.close()

    async def close(self) -> None:
        """Drop the connection without DISCONNECT (so the broker publishes our will). Idempotent."""
        self._lost(ConnectionLost("connection closed"))
        tasks, self._tasks = list(self._tasks), set()
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in tasks if t is not current), return_exceptions=True)

    def abort(self, reason: str) -> None:
        """Drop the connection now (the owner sees `closed` resolve and starts over)."""
        self._lost(ConnectionLost(reason))

    def _lost(self, exc: BaseException) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(str(exc)))
                future.exception()  # a publisher may have stopped caring: never "exception never retrieved"
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(exc)

    def _spawn(self, coro, name: str) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- publish / subscribe -----------------------------------------------------------------
    def publish(
        self, topic: str, payload: bytes, qos: int = 0, retain: bool = False
    ) -> asyncio.Future[object] | None:
        """Queue a PUBLISH; for QoS 1 returns a future that resolves on PUBACK (§4.3.2)."""
        if not self.connected or self._writer is None:
            raise ConnectionLost("not connected")
        head = _string(topic)
        future = None
        if qos:
            packet_id, future = self._allocate()
            head += struct.pack("!H", packet_id)
        flags = qos << 1 | (1 if retain else 0)
        # Header and payload are written separately: no copy of a large payload into a new bytes object.
        self._writer.write(bytes([PUBLISH << 4 | flags]) + varint(len(head) + len(payload)) + head)
        self._writer.write(payload)
        return future

    async def drain(self) -> None:
        """Wait until the socket's send buffer is below its high-water mark."""
        if self._writer is not None and self.connected:
            await self._writer.drain()

    async def subscribe(self, topics: list[tuple[str, int]], timeout: float = 10.0) -> list[int]:
        """Subscribe and wait for SUBACK; returns the granted QoS per topic (0x80 = refused)."""
        if not self.connected or self._writer is None:
            raise ConnectionLost("not connected")
        packet_id, future = self._allocate()
        body = struct.pack("!H", packet_id) + b"".join(_string(t) + bytes([q]) for t, q in topics)
        self._writer.write(_packet(SUBSCRIBE, 0x02, body))  # §3.8.1: reserved flags 0010
        granted = await asyncio.wait_for(future, timeout)
        return list(granted)  # type: ignore[call-overload]

    def _allocate(self) -> tuple[int, asyncio.Future[object]]:
        for _ in range(65535):
            self._next_id = self._next_id % 65535 + 1  # §2.3.1: non-zero 16-bit
            if self._next_id not in self._pending:
                future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
                self._pending[self._next_id] = future
                return self._next_id, future
        raise MqttError("65535 packets awaiting acknowledgement")

    # -- reading -----------------------------------------------------------------------------
    async def _read_packet(self) -> tuple[int, int, bytes]:
        assert self._reader is not None
        first = (await self._reader.readexactly(1))[0]
        length, shift = 0, 0
        for _ in range(4):
            byte = (await self._reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        else:
            raise MqttError("malformed remaining length")
        body = await self._reader.readexactly(length) if length else b""
        return first >> 4, first & 0x0F, body

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                kind, flags, body = await self._read_packet()
                self._received_at = loop.time()
                self._dispatch(kind, flags, body)
        except asyncio.CancelledError:
            raise
        except (OSError, asyncio.IncompleteReadError, MqttError, ValueError) as exc:
            self._lost(exc if str(exc) else ConnectionLost("connection closed by the broker"))

    def _dispatch(self, kind: int, flags: int, body: bytes) -> None:
        if kind in (PUBACK, SUBACK):
            packet_id = struct.unpack_from("!H", body)[0]
            future = self._pending.pop(packet_id, None)
            if future is not None and not future.done():
                future.set_result(body[2:] if kind == SUBACK else None)
        elif kind == PUBLISH:
            self._incoming(flags, body)
        elif kind != PINGRESP:
            raise MqttError(f"unexpected packet type {kind} from the broker")

    def _incoming(self, flags: int, body: bytes) -> None:
        qos = flags >> 1 & 0x03
        (length,) = struct.unpack_from("!H", body)
        topic = body[2 : 2 + length].decode("utf-8", "replace")
        offset = 2 + length
        if qos:
            packet_id = body[offset : offset + 2]
            offset += 2
            assert self._writer is not None
            self._writer.write(_packet(PUBACK, 0, packet_id))
        if self.on_message is not None:
            try:
                self.on_message(topic, body[offset:])
            except Exception:  # a bad handler must not take the connection down
                log.exception("MQTT message handler failed on %s", topic)

    async def _ping_loop(self) -> None:
        """§3.1.2.10: keep the connection alive, and notice a broker that stopped answering."""
        loop = asyncio.get_running_loop()
        interval = max(0.5, self.keepalive / 2)
        while True:
            await asyncio.sleep(interval)
            if loop.time() - self._received_at > self.keepalive * 1.5:
                self._lost(ConnectionLost(f"no answer from the broker for {self.keepalive * 1.5:g} s"))
                return
            assert self._writer is not None
            self._writer.write(_packet(PINGREQ, 0, b""))
