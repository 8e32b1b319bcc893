"""Malformed frames and exception responses from a raw TCP server: only that connection closes, data goes BAD."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linebridge.drivers.base import DeviceError, StreamHints, Unavailable
from linebridge.drivers.modbus import pdu as mb
from linebridge.drivers.modbus.client import UnitClient
from linebridge.drivers.modbus.driver import ModbusDriver
from linebridge.drivers.modbus.pdu import FunctionCode, MbapFramer, ModbusException, ProtocolError
from linebridge.drivers.modbus.points import Table
from linebridge.drivers.modbus.transport import ModbusConnection
from tests.modbus_helpers import (
    SMALL_MAP,
    CollectingSink,
    RawModbusServer,
    Request,
    frame,
    good_pdu,
    good_reply,
    make_driver,
    stop_task,
    with_aliases,
)


def _reply(
    transaction_shift: int = 0,
    unit_shift: int = 0,
    protocol: int = 0,
    pdu: Callable[[Request], bytes] = good_pdu,
    length: int | None = None,
    cut: int | None = None,
) -> Callable[[Request], bytes]:
    def respond(request: Request) -> bytes:
        data = frame(
            (request.transaction + transaction_shift) & 0xFFFF,
            (request.unit + unit_shift) & 0xFF,
            pdu(request),
            protocol,
            length,
        )
        return data[:cut] if cut is not None else data

    return respond


def _bump_function(request: Request) -> bytes:
    good = good_pdu(request)
    return bytes([good[0] + 1]) + good[1:]


def _bad_byte_count(request: Request) -> bytes:
    good = good_pdu(request)
    return good[:1] + bytes([good[1] + 2]) + good[2:]


def _short_data(request: Request) -> bytes:
    return good_pdu(request)[:-1]


MALFORMED = {
    "truncated": _reply(cut=9),
    "wrong transaction id": _reply(transaction_shift=1000),
    "wrong function code": _reply(pdu=_bump_function),
    "wrong byte count": _reply(pdu=_bad_byte_count),
    "missing data byte": _reply(pdu=_short_data),
    "wrong unit": _reply(unit_shift=1),
    "protocol id not 0": _reply(protocol=1),
    "MBAP length 0": _reply(length=0),
    "MBAP length too large": _reply(length=300),
    "exception of 3 bytes": _reply(pdu=lambda r: bytes([r.function | 0x80, 2, 0])),
    "empty PDU": _reply(pdu=lambda r: b""),
}


@pytest.fixture
async def raw_pair() -> AsyncIterator[tuple[RawModbusServer, RawModbusServer]]:
    """A device that will misbehave and a healthy one on another connection."""
    bad, healthy = RawModbusServer(), RawModbusServer()
    await bad.start()
    await healthy.start()
    yield bad, healthy
    await bad.stop()
    await healthy.stop()


async def _connected(endpoint: str, device_id: str, **options: Any) -> ModbusDriver:
    # 3 s, not the driver's default 1 s: on a loaded machine the test's own event loop can stall past 1 s
    # between the server accepting and the connect completing (seen once in five loaded runs).
    options.setdefault("timeout", 3.0)
    driver = make_driver(endpoint, device_id, map=SMALL_MAP, **options)
    driver.description = await driver.connect()  # type: ignore[attr-defined]
    with_aliases(driver.description.signals)  # type: ignore[attr-defined]
    return driver


@pytest.mark.parametrize("kind", list(MALFORMED))
async def test_malformed_response_closes_only_that_connection(
    kind: str, raw_pair: tuple[RawModbusServer, ...]
) -> None:
    bad, healthy = raw_pair
    broken, fine = await _connected(bad.endpoint, "bad"), await _connected(healthy.endpoint, "fine")
    sink = CollectingSink()
    task = asyncio.create_task(broken.stream(broken.description.signals, sink, StreamHints()))  # type: ignore[attr-defined]
    try:
        await sink.wait_for(lambda: len(sink.batches) >= 1)
        bad.respond = MALFORMED[kind]
        async with asyncio.timeout(15):  # a truncated frame is noticed when the 3 s response timeout lapses
            with pytest.raises(Unavailable):
                await task
        await bad.events.wait_for(lambda: bad.disconnects == 1)
        assert any(reason for reason in sink.reasons), "the sink is told why data went bad"
        assert sink.bad_batches() and sink.batches[-1] is sink.bad_batches()[-1], (
            "nothing GOOD after the failure"
        )
        # The other connection is untouched and still answers.
        assert healthy.disconnects == 0
        assert len((await fine.read(fine.description.signals)).values) == 5  # type: ignore[attr-defined]
        # The broken device's next request fails fast instead of hanging.
        with pytest.raises(Unavailable):
            await broken.read(broken.description.signals)  # type: ignore[attr-defined]
    finally:
        await stop_task(task)
        await broken.close()
        await fine.close()


async def test_malformed_write_echo_closes_the_connection(raw_pair: tuple[RawModbusServer, ...]) -> None:
    bad, _ = raw_pair
    driver = await _connected(bad.endpoint, "bad")
    try:
        bad.respond = _reply(pdu=lambda r: struct.pack(">BHH", 6, 9, 9) if r.function == 6 else good_pdu(r))
        word = next(s for s in driver.description.signals if s.path == "a/word")  # type: ignore[attr-defined]
        with pytest.raises(Unavailable, match="does not echo"):
            await driver.write([(word, 5)])
        await bad.events.wait_for(lambda: bad.disconnects == 1)
    finally:
        await driver.close()


def _exception(code: int, functions: set[int]) -> Callable[[Request], bytes]:
    def respond(request: Request) -> bytes:
        if request.function in functions:
            return frame(request.transaction, request.unit, bytes([request.function | 0x80, code]))
        return good_reply(request)

    return respond


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (1, "illegal function"),
        (2, "illegal data address"),
        (3, "illegal data value"),
        (4, "server device failure"),
        (5, "acknowledge"),
        (6, "server device busy"),
        (8, "memory parity error"),
        (10, "gateway path unavailable"),
        (11, "gateway target device failed to respond"),
        (42, "unknown exception code"),
    ],
)
async def test_write_exception_codes_become_device_errors(
    code: int, text: str, raw_pair: tuple[RawModbusServer, ...]
) -> None:
    bad, _ = raw_pair
    driver = await _connected(bad.endpoint, "dev")
    try:
        bad.respond = _exception(code, {5, 6, 15, 16, 22})
        word = next(s for s in driver.description.signals if s.path == "a/word")  # type: ignore[attr-defined]
        with pytest.raises(DeviceError, match=text) as caught:
            await driver.write([(word, 5)])
        assert isinstance(caught.value, ModbusException) and caught.value.code == code
        assert f"Modbus exception {code}" in str(caught.value) and "write HR 0" in str(caught.value)
        assert bad.disconnects == 0, "an exception response is a valid answer: the connection stays"
    finally:
        await driver.close()


async def test_read_exceptions(raw_pair: tuple[RawModbusServer, ...]) -> None:
    bad, _ = raw_pair
    driver = await _connected(bad.endpoint, "dev")
    signals = driver.description.signals  # type: ignore[attr-defined]
    try:
        bad.respond = _exception(2, {3})
        with pytest.raises(DeviceError, match="illegal data address"):
            await driver.read(signals)
        bad.respond = _exception(11, {3})
        with pytest.raises(Unavailable, match="gateway target"):
            await driver.read(signals)
    finally:
        await driver.close()


async def test_block_exception_marks_only_that_block_bad_and_recovers(
    raw_pair: tuple[RawModbusServer, ...],
) -> None:
    bad, _ = raw_pair
    driver = await _connected(bad.endpoint, "dev")
    by_path = {s.path: s for s in driver.description.signals}  # type: ignore[attr-defined]
    sink = CollectingSink()
    task = asyncio.create_task(driver.stream(list(by_path.values()), sink, StreamHints()))
    try:
        await sink.wait_for(lambda: len(sink.batches) >= 1)
        bad.respond = _exception(2, {3})
        await sink.wait_for(lambda: bool(sink.bad_batches()))
        refused = len(bad.requests)
        # Absence is only proven after cycles that did happen: wait until the driver has polled at least
        # as often again as it had when the first BAD arrived (at least one whole cycle, and three polls).
        await bad.events.wait_for(lambda: len(bad.requests) >= max(refused + 3, 2 * refused))
        assert len(sink.bad_batches()) == 1, "BAD is published once, not every cycle"
        assert set(sink.bad_batches()[0].aliases) == {
            by_path[p].alias for p in ("a/word", "a/float", "a/flag")
        }
        assert "illegal data address" in (sink.reasons[-1] or "")
        assert not task.done(), "a refused block does not take the device offline"
        bad.respond = good_reply
        await sink.wait_for(lambda: sink.reasons[-1] is None)
        await sink.wait_for(lambda: by_path["a/word"].alias in sink.batches[-1].aliases)
        assert sink.batches[-1].qualities is None
    finally:
        assert await stop_task(task) is None
        await driver.close()


async def test_gateway_exception_while_polling_is_unavailable(raw_pair: tuple[RawModbusServer, ...]) -> None:
    bad, _ = raw_pair
    driver = await _connected(bad.endpoint, "dev")
    sink = CollectingSink()
    task = asyncio.create_task(driver.stream(driver.description.signals, sink, StreamHints()))  # type: ignore[attr-defined]
    try:
        await sink.wait_for(lambda: len(sink.batches) >= 1)
        bad.respond = _exception(11, {1, 3})
        async with asyncio.timeout(5):
            with pytest.raises(Unavailable, match="gateway"):
                await task
        assert sink.bad_batches()
    finally:
        await stop_task(task)
        await driver.close()


async def test_late_response_is_dropped_and_the_connection_kept(
    raw_pair: tuple[RawModbusServer, ...],
) -> None:
    bad, _ = raw_pair
    delays = [0.3]

    async def slow_first(request: Request) -> bytes:
        if delays:
            await asyncio.sleep(delays.pop())
        return frame(request.transaction, request.unit, good_pdu(request, {0: request.transaction}))

    bad.respond = slow_first
    connection = ModbusConnection("127.0.0.1", bad.port)
    await connection.open(1.0)
    client = UnitClient(connection, 1)
    try:
        with pytest.raises(Unavailable, match="did not answer within 0.1 s"):
            await client.read(Table.HOLDING_REGISTER, 0, 1, timeout=0.1)
        second = await client.read(Table.HOLDING_REGISTER, 0, 1, timeout=2.0)
        assert int.from_bytes(second, "big") == 2, "the answer belongs to the second request"
        assert not connection.closed
        assert (connection.stats.timeouts, connection.stats.late_responses) == (1, 1)
    finally:
        await connection.close()
    assert connection.closed


# --- fuzzing the pure parsers and the whole client ------------------------------------------------

REQUESTS = [
    mb.read_request(FunctionCode.READ_COILS, 0, 10),
    mb.read_request(FunctionCode.READ_HOLDING_REGISTERS, 5, 3),
    mb.write_coil_request(1, True),
    mb.write_register_request(2, b"\x00\x07"),
    mb.write_coils_request(0, [True, False, True]),
    mb.write_registers_request(0, b"\x00\x01\x00\x02"),
    mb.mask_write_request(3, 0xFFFB, 4),
]


@settings(max_examples=400)
@given(st.binary(max_size=300), st.sampled_from(REQUESTS))
def test_parsers_only_raise_protocol_errors(data: bytes, request: bytes) -> None:
    try:
        frames = MbapFramer().feed(data)
    except ProtocolError:
        frames = []
    for received in frames:
        assert len(received.pdu) >= 1
    with contextlib.suppress(ProtocolError, ModbusException):
        payload = mb.check_response(request, data)
        assert data[0] == request[0] and (request[0] > 4 or len(payload) == data[1])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=40))
def test_any_reply_ends_in_data_or_a_clear_error(reply: bytes) -> None:
    async def scenario() -> None:
        server = RawModbusServer(lambda request: reply)
        await server.start()
        connection = ModbusConnection("127.0.0.1", server.port)
        try:
            await connection.open(1.0)
            client = UnitClient(connection, 1)
            try:
                data = await client.read(Table.HOLDING_REGISTER, 0, 2, timeout=0.05)
            except (Unavailable, DeviceError):
                assert len(server.requests) == 1, "one request, one clear error, no retries"
            else:
                assert len(data) == 4
        finally:
            await connection.close()
            await server.stop()

    asyncio.run(scenario())
