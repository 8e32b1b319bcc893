"""Fuzz target: VDA 5050 messages from a fleet broker (topic and payload bytes) through the vda5050 driver.

Contract (drivers/vda5050/driver.py, Vda5050Driver.on_message): nothing escapes; a message is either
applied (the AGV's batch columns line up, values have their signals' types) or dropped and counted in
exactly one `bad/<kind>` counter; the message counter counts every message once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from fuzz.engine import Cursor, chunked, instrumented, run

with instrumented(__name__):
    import msgspec

    from linebridge.drivers.base import DriverContext, SampleBatch, ValueType
    from linebridge.drivers.vda5050 import messages as m
    from linebridge.drivers.vda5050.driver import Vda5050Driver, Vda5050Options
    from linebridge.drivers.vda5050.link import parse_endpoint
    from linebridge.drivers.vda5050.signals import SIGNAL_TABLE
    from linebridge.drivers.vda5050.sim_agv import SimAgv
    from linebridge.drivers.vda5050.sim_model import AgvConfig

TYPES = {ValueType.DOUBLE: float, ValueType.INT: int, ValueType.BOOL: bool, ValueType.STRING: str}
KINDS = ("connection", "state", "factsheet", "visualization")
SERIALS = ("agv-001", "agv$1", "a/b", "", "AGV_2:x.y-z", "agv-001 ")


class Host:
    """A DeviceHost that assigns aliases like the registry and checks every batch."""

    def __init__(self) -> None:
        self.batches: list[SampleBatch] = []

    def attach(self, device_id: str, description, handler) -> bool:  # type: ignore[no-untyped-def]
        for i, signal in enumerate(description.signals, start=1):
            signal.alias = i
        return True

    def detach(self, device_id: str, reason: str) -> None:
        """Nothing to do."""

    def publish(self, batch: SampleBatch) -> None:
        self.batches.append(batch)


class Sink:
    """The stream's sink: batches go to the host's list."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def publish(self, batch: SampleBatch) -> None:
        self.host.publish(batch)

    def degraded(self, reason: str | None) -> None:
        """Not used by this driver."""


def driver() -> tuple[Vda5050Driver, Host]:
    host = Host()
    ctx = DriverContext(
        "fleet",
        "vda5050+mqtt://127.0.0.1:1883?interface=uagv&manufacturer=acme",
        Vda5050Options(max_message_bytes=4096),
        logging.getLogger("fuzz.vda5050"),
        host,
    )
    d = Vda5050Driver(ctx)
    d._sink = Sink(host)  # type: ignore[assignment]
    return d, host


def check_message(d: Vda5050Driver, host: Host, topic: str, payload: bytes) -> None:
    """One message through on_message: applied with well-typed columns, or counted as one bad kind."""
    bad_before, messages_before, batches_before = sum(d.bad.values()), d.messages, len(host.batches)
    d.on_message(topic, payload)
    assert d.messages == messages_before + 1
    assert sum(d.bad.values()) - bad_before in (0, 1)
    types = {i: t for i, (_, t, _, _) in enumerate(SIGNAL_TABLE, start=1)}
    for batch in host.batches[batches_before:]:
        assert len(batch.aliases) == len(batch.values) == len(batch.timestamps)
        for alias, value in zip(batch.aliases, batch.values, strict=True):
            assert type(value) is TYPES[types[alias]], (alias, value)


def one_input(data: bytes) -> None:
    cursor = Cursor(data)
    d, host = driver()
    for _ in range(4):
        kind = cursor.choice(KINDS)
        serial = cursor.choice(SERIALS)
        check_message(d, host, f"uagv/v2/acme/{serial}/{kind}", cursor.chunk())


def valid_messages() -> list[tuple[str, bytes]]:
    agv = SimAgv(AgvConfig("agv-001", manufacturer="acme"), parse_endpoint("mqtt://127.0.0.1:1"))
    return [
        ("connection", m.encode(agv._connection("ONLINE"))),
        ("factsheet", m.encode(agv.factsheet())),
        ("state", m.encode(agv.state())),
        (
            "visualization",
            m.encode(m.Visualization(**agv._header("visualization"), agv_position=agv._position())),
        ),
    ]


def seeds() -> Iterator[bytes]:
    """Each valid message (kind index, serial index 0, payload), and a whole valid session."""
    messages = valid_messages()
    session = b""
    for i, (_, payload) in enumerate(messages):
        head = bytes([i, 0])
        yield head + chunked(payload[:255])
        session += head + chunked(payload[:255])
    yield session
    yield bytes([2, 0]) + chunked(msgspec.json.encode({"headerId": 1}))


if __name__ == "__main__":
    run(one_input, seeds)
