"""AGV conformance (VDA 5050): the same checks against the fleet simulator (default) or a real fleet (--agv-rig)."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from linebridge.app import BridgeApp
from linebridge.client import AsyncClient
from linebridge.config import parse_config
from linebridge.devices.catalog import DriverCatalog
from linebridge.hil.sim_process import SimProcess
from linebridge.model import DeviceState
from tests.conftest import wait_for_state
from tests.mqtt_broker import Broker

DEFAULT_RIG = Path(__file__).parent / "rigs" / "agv-fleet.yaml"


class AgvExpect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signals: list[str] = Field(default_factory=list)
    streaming: str = "position/*"


class AgvRig(BaseModel):
    """A fleet on a broker: the simulator when `endpoint` is empty."""

    model_config = ConfigDict(extra="forbid")
    name: str
    endpoint: str = ""
    options: dict[str, object] = Field(default_factory=dict)
    agvs: list[str] = Field(min_length=1)
    expect: AgvExpect = Field(default_factory=AgvExpect)


def load(config: pytest.Config) -> AgvRig:
    path = config.getoption("--agv-rig", default=None) or DEFAULT_RIG
    return AgvRig.model_validate(yaml.safe_load(Path(path).read_text()))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "agv" in metafunc.fixturenames:
        metafunc.parametrize("agv", load(metafunc.config).agvs)


@pytest.fixture
async def fleet_bridge(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BridgeApp]:
    rig = load(request.config)
    broker: Broker | None = None
    sim: SimProcess | None = None
    endpoint = rig.endpoint
    with tempfile.TemporaryDirectory(prefix="linebridge-hil-mqtt-") as workdir:
        if not endpoint:
            broker = Broker(Path(workdir))
            await broker.start()
            sim = SimProcess("agv-fleet", rig.name, ["--agvs", str(len(rig.agvs)), "--broker", broker.url])
            await asyncio.to_thread(sim.start)
            endpoint = sim.endpoint
        config = parse_config(
            {
                "bridge": {"id": f"hil-{rig.name}"},
                "grpc": {"address": "127.0.0.1:0", "grace_seconds": 0},
                "metrics": {"enabled": False},
                "discovery": {"enabled": False},
                "devices": [
                    {"id": "fleet", "driver": "vda5050", "endpoint": endpoint, "options": rig.options}
                ],
                "audit": {"path": str(tmp_path / "audit")},
            },
            f"rig {rig.name}",
            env={},
        )
        app = BridgeApp(config, DriverCatalog.from_entry_points())
        await app.start()
        try:
            yield app
        finally:
            await app.stop()
            if sim is not None:
                await asyncio.to_thread(sim.stop)
            if broker is not None:
                await broker.stop()


async def test_agv_is_a_device_with_its_signals_and_streams(
    fleet_bridge: BridgeApp, agv: str, request
) -> None:
    rig = load(request.config)
    await wait_for_state(fleet_bridge, agv, DeviceState.ONLINE, timeout=20)
    async with AsyncClient(fleet_bridge.api_address) as client:
        got = await client.device(agv)
        assert got.kind.name == "AGV"
        missing = [p for p in rig.expect.signals if p not in got.signals]
        assert not missing, f"{agv} lacks signals {missing}"
        seen = 0
        async with asyncio.timeout(15):
            async for _ in client.subscribe([f"{agv}/{rig.expect.streaming}"]).samples():
                seen += 1
                if seen >= 10:
                    break


async def test_an_order_where_the_agv_stands_and_instant_actions_succeed(
    fleet_bridge: BridgeApp, agv: str
) -> None:
    await wait_for_state(fleet_bridge, agv, DeviceState.ONLINE, timeout=20)
    handle = fleet_bridge.driver_of(agv)
    async with asyncio.timeout(20):
        while handle.state is None or handle.state.agv_position is None:
            await handle.next_state()
    s = handle.state
    p = s.agv_position
    node = {
        "nodeId": s.last_node_id or "here",
        "sequenceId": 0,
        "released": True,
        "actions": [],
        "nodePosition": {"x": p.x, "y": p.y, "mapId": p.map_id, "allowedDeviationXY": 0.5},
    }
    order = {"orderId": f"hil-{agv}", "orderUpdateId": 0, "nodes": [node], "edges": []}
    async with AsyncClient(fleet_bridge.api_address) as client:
        for method, arg in (
            ("order", json.dumps(order)),
            ("instant_actions", json.dumps([{"actionType": "stateRequest"}])),
            ("instant_actions", json.dumps([{"actionType": "startPause"}])),
            ("instant_actions", json.dumps([{"actionType": "stopPause"}])),
        ):
            command = await client.execute(agv, invoke=method, args=[arg], timeout=20)
            await command.wait(timeout=30)  # raises CommandFailed with the AGV's words
