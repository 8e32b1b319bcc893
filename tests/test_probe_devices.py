"""Regressions from the fault probe (issue #12) with real device simulators: reasons, paths, watch losses."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from linebridge.api import pb
from linebridge.model import DeviceState
from tests.conftest import BridgeFactory, wait_for_state
from tests.gates_helpers import events_of, eventually, write
from tests.opcua_helpers import ThreadedSimulator

FAILED = pb.command.COMMAND_STATE_FAILED
NO_METADATA: tuple[tuple[str, str], ...] = ()
EMPTY_REASON = re.compile(r":\s*$")


@pytest.fixture(scope="module")
def robot() -> Iterator[ThreadedSimulator]:
    host = ThreadedSimulator(name="probe-kr210", rate_hz=50)
    host.start()
    yield host
    host.stop()


def opcua_device(device_id: str, endpoint: str, **options: object) -> dict[str, object]:
    return {"id": device_id, "driver": "opcua", "endpoint": endpoint, "options": options}


async def test_a_hung_opcua_server_gives_reasons_that_say_what_happened(
    start_bridge: BridgeFactory, robot: ThreadedSimulator
):
    await robot.fresh()
    app = await start_bridge([opcua_device("robot-1", robot.sim.endpoint, request_timeout=1.0)])
    await wait_for_state(app, "robot-1", DeviceState.ONLINE)
    robot.freeze(4.0)  # as SIGSTOP: the socket stays open, nothing answers
    events = await events_of(app, write("robot-1", "speed_override", 50.0), NO_METADATA)
    failure = events[-1]
    assert failure.state == FAILED and failure.error.reason == "DEVICE_OFFLINE"
    assert "no response within 1 s" in failure.error.message, failure.error.message
    await wait_for_state(app, "robot-1", DeviceState.OFFLINE, DeviceState.CONNECTING, timeout=15)
    await eventually(lambda: app.registry.get("robot-1").state_reason, "an offline reason", timeout=15)
    reason = app.registry.get("robot-1").state_reason
    assert reason and not EMPTY_REASON.search(reason), reason
