"""Modbus TCP connections: one per gateway host:port, shared by every unit id behind it.

A connection carries one outstanding request at a time (many gateways and small PLCs process
requests strictly in order and some drop pipelined ones). Received bytes are framed in the
protocol callback and matched to the pending request by transaction id. A response that arrives
after its request timed out, or a second copy of an answered one, is recognised by its recent
transaction id and dropped; any other surprise (a transaction id never sent lately, wrong unit,
broken header) means the stream cannot be trusted, so the connection closes and every request on
it fails with Unavailable.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import cast

from linebridge.drivers.base import Unavailable
from linebridge.drivers.modbus.pdu import Frame, MbapFramer, ProtocolError, encode_frame
from linebridge.errors import describe

log = logging.getLogger(__name__)
_RECENT_KEPT = 32  # transaction ids whose late or repeated responses are dropped, not fatal


@dataclass(slots=True)
class ConnectionStats:
    """Counters an integrator can read in diagnostics."""

    requests: int = 0
    timeouts: int = 0
    late_responses: int = 0


@dataclass(slots=True)
class _Pending:
    transaction: int
    unit: int
    future: asyncio.Future[bytes]


class _Protocol(asyncio.Protocol):
    """asyncio callbacks of one connection; bytes go straight to the framer (no reader task hop)."""

    def __init__(self, owner: ModbusConnection) -> None:
        self._owner = owner

    def data_received(self, data: bytes) -> None:
        self._owner.received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.fail(
            f"{self._owner.address} closed the connection"
            if exc is None
            else f"connection to {self._owner.address} broke: {describe(exc)}"
        )


class ModbusConnection:
    """One TCP connection to a Modbus server or gateway."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.refs = 0
        self.stats = ConnectionStats()
        self._transport: asyncio.Transport | None = None
        self._lock = asyncio.Lock()  # one outstanding request (module docstring)
        self._open_lock = asyncio.Lock()
        self._framer = MbapFramer()
        self._pending: _Pending | None = None
        self._recent: deque[int] = deque(maxlen=_RECENT_KEPT)
        self._transaction = 0
        self._closed_reason: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def usable(self) -> bool:
        """Open (or not yet opened) on the running event loop."""
        return not self.closed and self._loop in (None, asyncio.get_running_loop())

    @property
    def closed(self) -> bool:
        """True once the connection failed or was closed; it is never reopened."""
        return self._closed_reason is not None

    @property
    def address(self) -> str:
        """host:port for messages."""
        return f"{self.host}:{self.port}"

    async def open(self, timeout: float) -> None:
        """Connect once; later callers wait for the first and share its result."""
        async with self._open_lock:
            if self._transport is not None or self.closed:
                self._raise_if_closed()
                return
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(timeout):
                    transport, _ = await loop.create_connection(lambda: _Protocol(self), self.host, self.port)
            except (OSError, TimeoutError) as exc:
                self._closed_reason = f"cannot connect to {self.address}: {describe(exc, timeout)}"
                raise Unavailable(self._closed_reason) from None
            self._loop, self._transport = loop, cast(asyncio.Transport, transport)

    def _raise_if_closed(self) -> None:
        if self._closed_reason is not None:
            raise Unavailable(self._closed_reason)

    async def request(self, unit: int, pdu: bytes, timeout: float) -> bytes:
        """Send one PDU to `unit` and return the response PDU; Unavailable on timeout or failure."""
        sent: int | None = None
        try:
            async with asyncio.timeout(timeout), self._lock:
                self._raise_if_closed()
                assert self._transport is not None, "request() before open()"
                sent = self._next_transaction()
                future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
                self._pending = _Pending(sent, unit, future)
                self.stats.requests += 1
                # No drain(): with one small request in flight the send buffer never fills.
                self._transport.write(encode_frame(sent, unit, pdu))
                return await future
        except TimeoutError:
            raise self._timed_out(unit, sent, timeout) from None
        finally:
            if sent is not None:
                self._recent.append(sent)
            if self._pending is not None and self._pending.transaction == sent:
                self._pending = None

    def _next_transaction(self) -> int:
        self._transaction = (self._transaction + 1) & 0xFFFF
        return self._transaction

    def _timed_out(self, unit: int, sent: int | None, timeout: float) -> Unavailable:
        self.stats.timeouts += 1
        if self._framer.pending:
            # Part of a frame arrived and the rest never did: the stream is out of step.
            self.fail(f"truncated response from {self.address} (unit {unit})")
            return Unavailable(self._closed_reason)
        self._raise_if_closed()
        return Unavailable(f"unit {unit} at {self.address} did not answer within {timeout:g} s")

    def received(self, data: bytes) -> None:
        """Bytes from the socket: complete frames go to the pending request."""
        if self.closed:
            return
        try:
            for frame in self._framer.feed(data):
                self._dispatch(frame)
        except ProtocolError as exc:
            self.fail(f"malformed response from {self.address}: {exc}")

    def _dispatch(self, frame: Frame) -> None:
        pending = self._pending
        if pending is not None and frame.transaction == pending.transaction:
            if frame.unit != pending.unit:
                raise ProtocolError(f"response from unit {frame.unit} to a request for unit {pending.unit}")
            if not pending.future.done():
                pending.future.set_result(frame.pdu)
            return
        if frame.transaction in self._recent:
            self.stats.late_responses += 1
            log.debug(
                "dropped a late or repeated response (transaction %d) from %s",
                frame.transaction,
                self.address,
            )
            return
        raise ProtocolError(f"unexpected transaction id {frame.transaction}")

    def fail(self, reason: str) -> None:
        """Close because the stream cannot be trusted; pending and later requests get Unavailable."""
        if self._closed_reason is None:
            log.warning("closing Modbus connection: %s", reason)
        self._shut(reason)

    def _shut(self, reason: str) -> None:
        if self._closed_reason is None:
            self._closed_reason = reason
        pending, self._pending = self._pending, None
        if pending is not None and not pending.future.done():
            pending.future.set_exception(Unavailable(reason))
        if self._transport is not None:
            self._transport.close()

    async def close(self) -> None:
        """Close the socket; idempotent."""
        self._shut(f"connection to {self.address} closed")
        self._transport = None
        await asyncio.sleep(0)  # let connection_lost run before the loop might close


class ConnectionPool:
    """Reference-counted connections keyed by host:port, so units behind one gateway share one."""

    def __init__(self) -> None:
        self._connections: dict[tuple[str, int], ModbusConnection] = {}

    async def acquire(self, host: str, port: int, timeout: float) -> ModbusConnection:
        """The open connection to host:port, opening it if needed; release() it when done."""
        key = (host, port)
        connection = self._connections.get(key)
        if connection is None or not connection.usable:
            connection = ModbusConnection(host, port)
            self._connections[key] = connection
        connection.refs += 1
        try:
            await connection.open(timeout)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: ModbusConnection) -> None:
        """Drop one reference; the last one closes the connection."""
        connection.refs -= 1
        if connection.refs > 0:
            return
        key = (connection.host, connection.port)
        if self._connections.get(key) is connection:
            del self._connections[key]
        await connection.close()

    def connections(self) -> list[ModbusConnection]:
        """The connections currently held (for diagnostics and tests)."""
        return list(self._connections.values())


POOL = ConnectionPool()
