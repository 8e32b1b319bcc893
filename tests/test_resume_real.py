"""Kill, restart, resume: the bridge's supervisor against the real OPC UA, Modbus and UR simulators.

Each simulator runs as its own process speaking its real protocol on loopback. It is killed with SIGKILL
(no goodbye on any socket), the device must go OFFLINE, and after a restart on the same ports the *same*
Subscribe stream must carry samples whose source timestamps are later than the restart: a sample buffered
before the kill cannot pass for a resumed one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from linebridge.client import Sample
from linebridge.hil.sim_process import SimProcess
from linebridge.model import DeviceState
from tests.conftest import wait_for_state

# kind of simulator -> (driver, driver options, the streaming signal the test watches)
CASES: dict[str, tuple[str, dict[str, Any], str]] = {
    "opcua-robot": ("opcua", {}, "axes/1/actual_position"),
    "modbus-plc": ("modbus", {"unit": 1, "map": "cell-plc"}, "conveyor/part_count"),
    "ur": ("ur", {}, "controller/timestamp"),
}


@pytest.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[SimProcess]:
    process = SimProcess(request.param, f"resume-{request.param}", ["--no-mdns"])
    if request.param != "ur":
        process.args += ["--port", "0"]
    await asyncio.to_thread(process.start)
    yield process
    await asyncio.to_thread(process.stop)


async def _sample_after(stream: AsyncIterator[object], moment_ns: int, timeout: float = 20.0) -> Sample:
    """The first sample on `stream` whose source timestamp is later than `moment_ns`."""
    async with asyncio.timeout(timeout):
        async for item in stream:
            if isinstance(item, Sample) and item.timestamp_ns > moment_ns:
                return item
    raise AssertionError("the stream ended before a fresh sample arrived")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sim", list(CASES), indirect=True)
async def test_killed_device_comes_back_and_the_same_stream_resumes(sim, start_bridge, client_for):
    driver, options, signal = CASES[sim.kind]
    device = {"id": sim.name, "driver": driver, "endpoint": sim.endpoint, "options": options}
    app = await start_bridge([device])
    await wait_for_state(app, sim.name, DeviceState.ONLINE, timeout=30)
    stream = client_for(app).samples([f"{sim.name}/{signal}"])
    first = await _sample_after(stream, 0)
    assert first.path == f"{sim.name}/{signal}"

    connections = app.sessions[sim.name].connections
    await asyncio.to_thread(sim.kill)
    await wait_for_state(app, sim.name, DeviceState.OFFLINE, timeout=30)
    restarted_ns = time.time_ns()  # nothing the new process produces is older than this
    await asyncio.to_thread(sim.start)
    await wait_for_state(app, sim.name, DeviceState.ONLINE, timeout=30)

    resumed = await _sample_after(stream, restarted_ns)
    assert resumed.path == f"{sim.name}/{signal}"
    assert app.sessions[sim.name].connections == connections + 1, "one reconnect, by the supervisor"
    await stream.aclose()
