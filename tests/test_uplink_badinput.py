"""A hostile broker: malformed packets, PUBACKs nobody asked for, oversized PUBLISHes, and a broker that
never answers CONNECT. Each is counted, logged, closes at most its own connection, and proves nothing
that the broker did not read (so the outbox keeps it).

The broker here is the test's own small TCP server (it must send what no real broker sends); it also
decodes the link's CONNECT packet to check the flags Sparkplug 3.0 requires.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from linebridge.errors import LinkError
from linebridge.uplink.link import Link, LinkCounters, LinkSettings
from tests.mqtt_broker import free_port

CONNACK_311 = b"\x20\x02\x00\x00"
CONNACK_5 = b"\x20\x03\x00\x00\x00"


def packet(kind: int, flags: int, body: bytes) -> bytes:
    """An MQTT packet with its remaining length (the test's own encoder)."""
    length, out = len(body), bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        out.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([kind << 4 | flags]) + bytes(out) + body


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first >> 4, first & 0x0F, await reader.readexactly(length)


@dataclass
class Hostile:
    """Answers CONNECT, SUBSCRIBE, PINGREQ and QoS 1 PUBLISH properly; the next QoS 1 PUBLISH after
    `garbage` is set gets the garbage first, then its PUBACK."""

    garbage: bytes = b""
    answer_connect: bool = True
    connack: bytes = CONNACK_311
    connects: list[bytes] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                kind, flags, body = await read_packet(reader)
                if kind == 1:
                    self.connects.append(body)
                    if self.answer_connect:
                        writer.write(self.connack)
                elif kind == 3 and flags & 0x06:
                    topic_length = struct.unpack_from("!H", body)[0]
                    packet_id = body[2 + topic_length : 4 + topic_length]
                    writer.write(self.garbage + packet(4, 0, packet_id))
                    self.garbage = b""
                elif kind == 8:
                    writer.write(packet(9, 0, body[:2] + b"\x01"))
                elif kind == 12:
                    writer.write(b"\xd0\x00")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    server = Hostile()
    await server.start()
    yield server
    await server.stop()


class Made:
    """Links made by a test, closed after it."""

    def __init__(self) -> None:
        self.links: list[Link] = []
        self.counters = LinkCounters()
        self.received: list[tuple[str, bytes]] = []

    async def link(self, port: int, connect: bool = True, **changes: object) -> Link:
        base: dict[str, object] = {
            "host": "127.0.0.1",
            "port": port,
            "client_id": "edge",
            "keepalive": 30,
            "protocol": 4,
            "will_topic": "spBv1.0/g/NDEATH/n",
            "will_payload": b"death",
            "proof_topic": "linebridge/proof/g/n",
            "connect_timeout": 1.0,
            "max_incoming": 2048,
        }
        settings = LinkSettings(**(base | changes))  # type: ignore[arg-type]
        link = Link(settings, self.counters, lambda t, p: self.received.append((t, p)), lambda _: None)
        self.links.append(link)
        if connect:
            await link.connect()
        return link


@pytest.fixture
async def made() -> AsyncIterator[Made]:
    links = Made()
    yield links
    for link in links.links:
        await link.close()


async def until(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


MALFORMED = {
    "short PUBACK body": b"\x40\x01\x00",
    "PUBACK with a long body": b"\x40\x03\x00\x01\x00",
    "remaining length of five bytes": b"\x40\xff\xff\xff\xff\x01",
    "reserved packet type 0": b"\x00\x00",
    "short PUBLISH body": b"\x30\x01\x00",
    "PUBLISH whose topic length overruns": b"\x32\x04\x00\x09ab",
    "CONNACK again, short": b"\x20\x01\x00",
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_a_malformed_packet_closes_only_that_connection_and_proves_nothing(
    name: str, hostile: Hostile, made: Made, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    hostile.garbage = MALFORMED[name]
    link = await made.link(hostile.port)
    data = link.publish("spBv1.0/g/DDATA/n/d", b"sample")
    link.checkpoint()  # answered with the garbage
    async with asyncio.timeout(10):
        reason = await link.closed
    assert link.proven < data  # not proven: the outbox keeps it for the next connection
    assert "malformed" in reason or "protocol" in reason.lower(), reason
    assert made.counters.protocol_errors == 1
    # the next connection works
    hostile.garbage = b""
    again = await made.link(hostile.port)
    position = again.publish("spBv1.0/g/DDATA/n/d", b"sample")
    again.checkpoint()
    await until(lambda: again.proven >= position, "proof on a new connection")


async def test_a_puback_for_an_unknown_packet_id_is_counted_and_logged(
    hostile: Hostile, made: Made, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="linebridge.uplink.link")
    link = await made.link(hostile.port)
    link.publish("spBv1.0/g/DDATA/n/d", b"x")
    hostile.garbage = packet(4, 0, b"\x7e\x7e")  # packet id 32382, never sent, before the real PUBACK
    link.checkpoint()
    await until(lambda: made.counters.unknown_acks == 1, "the stray PUBACK counted")
    assert any("32382" in r.getMessage() for r in caplog.records)
    assert not link.closed.done()
    position = link.publish("spBv1.0/g/DDATA/n/d", b"y")
    link.checkpoint()
    await until(lambda: link.proven >= position, "proof after the stray PUBACK")  # the link carries on


async def test_an_oversized_publish_is_dropped_counted_and_the_link_carries_on(
    hostile: Hostile, made: Made, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="linebridge.uplink.link")
    topic = b"spBv1.0/g/NCMD/n"
    big = packet(3, 0, struct.pack("!H", len(topic)) + topic + b"\x00" * 5000)
    small = packet(3, 0, struct.pack("!H", len(topic)) + topic + b"ok")
    hostile.garbage = big + small
    link = await made.link(hostile.port)
    position = link.publish("linebridge/proof/g/n", b"", qos=1)  # answered as above
    await until(lambda: made.received, "the small command")
    assert made.received == [("spBv1.0/g/NCMD/n", b"ok")]
    assert made.counters.oversized_messages == 1
    assert any("5000-byte" in r.getMessage() for r in caplog.records)
    await until(lambda: link.proven >= position, "proof after the oversized message")


async def test_connect_flags_are_what_sparkplug_requires(hostile: Hostile, made: Made) -> None:
    """tck-id-principles-persistence-clean-session-311/-50, tck-id-payloads-ndeath-will-message-qos/-retain."""
    await made.link(hostile.port)
    hostile.connack = CONNACK_5
    await made.link(hostile.port, protocol=5)
    v311, v5 = hostile.connects
    for body, level in ((v311, 4), (v5, 5)):
        assert body[:6] == b"\x00\x04MQTT" and body[6] == level
        flags = body[7]
        assert flags & 0x02, "Clean Session / Clean Start"
        assert flags & 0x04 and (flags >> 3) & 0x03 == 1 and not flags & 0x20, "will at QoS 1, retain false"
    length, offset = v5[10], 11  # MQTT 5 CONNECT properties (all short here: one-byte length)
    properties = v5[offset : offset + length]
    assert properties[0] == 0x11 and properties[1:5] == b"\x00\x00\x00\x00", "Session Expiry Interval 0"


async def test_bdseq_counts_only_connect_packets_that_went_out(hostile: Hostile, made: Made) -> None:
    """tck-id-topics-nbirth-bdseq-increment: a TCP attempt that never sent CONNECT must not count."""
    refused = await made.link(free_port(), connect=False)
    with pytest.raises(LinkError):
        await refused.connect()
    assert not refused.connect_sent
    hostile.answer_connect = False  # takes the CONNECT, never answers it
    silent = await made.link(hostile.port, connect=False)
    with pytest.raises(LinkError, match="timed out"):
        await silent.connect()
    assert silent.connect_sent and len(hostile.connects) == 1
