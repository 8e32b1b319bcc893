"""A device that accepts the connection and then fails (issue 12, defect 7): the backoff keeps growing
across such connections, and the session's log lines stay bounded."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from linebridge.devices.loglimit import RepeatLimiter
from linebridge.model import DeviceState
from tests.conftest import wait_for_state
from tests.gates_helpers import eventually
from tests.modbus_helpers import SMALL_MAP, RawModbusServer, Request, frame, good_reply

CONNECTIONS = 6


@pytest.fixture
async def flapping() -> AsyncIterator[RawModbusServer]:
    """Answers the first request of each connection (the driver's probe), then sends truncated frames."""
    server = RawModbusServer()
    answered = {"connection": 0}

    def respond(request: Request) -> bytes:
        if answered["connection"] != server.connections:
            answered["connection"] = server.connections
            return good_reply(request)
        return frame(request.transaction, request.unit, bytes([request.function, 2]))[:9]

    server.respond = respond
    await server.start()
    yield server
    await server.stop()


async def test_backoff_grows_across_short_lived_connections_and_logs_stay_bounded(
    start_bridge, flapping, caplog
):
    """Before: the backoff reset on every successful connect: 331-334 reconnects in 60 s, 906 "offline"
    warnings in 90 s."""
    device = {
        "id": "plc-flap",
        "driver": "modbus",
        "endpoint": flapping.endpoint,
        "options": {"map": SMALL_MAP},
    }
    with caplog.at_level(logging.INFO, logger="linebridge.devices.sessions"):
        app = await start_bridge(
            [device], sessions={"backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.05}
        )
        session = app.sessions["plc-flap"]
        await eventually(lambda: session.connections >= CONNECTIONS, "six connections", timeout=60)
        await wait_for_state(app, "plc-flap", DeviceState.OFFLINE, DeviceState.CONNECTING)
    assert session.connections >= CONNECTIONS, "the device never connected that often"
    # every connection failed within healthy_after_seconds (30 s): the backoff step only grows
    assert session._failures >= session.connections - 1
    lines = [r.getMessage() for r in caplog.records if "plc-flap" in r.getMessage()]
    offline = [line for line in lines if " offline: " in line]
    online = [line for line in lines if "back online" in line]
    assert len(offline) == 1 and len(online) <= 1, lines


async def test_backoff_starts_over_after_a_healthy_connection(start_bridge, flapping):
    device = {
        "id": "plc-flap",
        "driver": "modbus",
        "endpoint": flapping.endpoint,
        "options": {"map": SMALL_MAP},
    }
    app = await start_bridge(
        [device],
        sessions={"backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.05, "healthy_after_seconds": 0},
    )
    session = app.sessions["plc-flap"]
    await eventually(lambda: session.connections >= CONNECTIONS, "six connections", timeout=60)
    assert session.connections >= CONNECTIONS and session._failures <= 1


def test_repeated_lines_are_counted_and_reported(caplog) -> None:
    limiter = RepeatLimiter(logging.getLogger("test.repeat"), window=3600)
    with caplog.at_level(logging.WARNING, logger="test.repeat"):
        logged = [limiter.log(logging.WARNING, "offline", "device %s offline", "d") for _ in range(120)]
    assert logged.count(True) == 1 and limiter.repeats("offline") == 119
    limiter.window = 0
    with caplog.at_level(logging.WARNING, logger="test.repeat"):
        limiter.log(logging.WARNING, "offline", "device %s offline", "d")
    assert caplog.records[-1].getMessage() == "device d offline (previous line repeated 119 times in 0 s)"
