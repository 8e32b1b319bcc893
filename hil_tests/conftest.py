"""HIL suite fixtures: the rig (simulators by default, real devices with --rig) and a bridge for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from linebridge.app import BridgeApp
from linebridge.client import AsyncClient
from linebridge.config import parse_config
from linebridge.devices.catalog import DriverCatalog
from linebridge.hil.rig import Rig, RigDevice, load_rig
from linebridge.hil.sim_process import SimProcess
from tests.conftest import no_leaked_tasks  # noqa: F401  (the same leak guard as the unit tests)

DEFAULT_RIG = Path(__file__).parent / "rigs" / "simulated-cell.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--rig", default=None, help="rig file (YAML); default: simulators on loopback")
    parser.addoption(
        "--agv-rig", default=None, help="AGV fleet rig file (YAML); default: hil_tests/rigs/agv-fleet.yaml"
    )


def simulator_for(device: RigDevice) -> SimProcess:
    """The simulator process of a rig device (`simulator:` and `simulator_args:` in the rig file)."""
    return SimProcess(device.simulator, device.id, list(device.simulator_args))


@dataclass
class RigUnderTest:
    """The rig and, for simulated devices, their processes."""

    rig: Rig
    simulators: dict[str, SimProcess]
    real: bool

    def config(self, audit_dir: Path) -> Any:
        static = [
            {"id": d.id, "driver": d.driver, "endpoint": d.endpoint, "options": d.options}
            for d in self.rig.devices
            if not d.discover
        ]
        return parse_config(
            {
                "bridge": {"id": f"hil-{self.rig.name}"},
                "grpc": {"address": "127.0.0.1:0", "grace_seconds": 0},
                "metrics": {"enabled": False},
                "discovery": {
                    "enabled": any(d.discover for d in self.rig.devices),
                    "interfaces": ["127.0.0.1"],
                    "advertise": False,
                    # The rig names its devices: approve those, and nothing else that announces itself.
                    "auto_approve": [{"name": d.id} for d in self.rig.devices if d.discover],
                },
                "sessions": {"backoff_initial_seconds": 0.1, "backoff_max_seconds": 1.0},
                "devices": static,
                "audit": {"path": str(audit_dir)},  # commands the suite sends are audited, outside the repo
            },
            f"rig {self.rig.name}",
            env={},
        )


@pytest.fixture(scope="session")
def rig(request: pytest.FixtureRequest) -> Iterator[RigUnderTest]:
    path = request.config.getoption("--rig")
    loaded = load_rig(path or DEFAULT_RIG)
    # A rig's simulators are started whether it is the default one or named with --rig (as
    # `linebridge hil run` does); a real cell's devices name no simulator.
    sims = {d.id: simulator_for(d) for d in loaded.devices if d.simulator}
    try:
        for sim in sims.values():
            sim.start()
        yield RigUnderTest(loaded, sims, real=not sims)
    finally:
        for sim in sims.values():
            sim.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        path = metafunc.config.getoption("--rig")
        devices = load_rig(path or DEFAULT_RIG).devices
        metafunc.parametrize("device", devices, ids=[d.id for d in devices])


@pytest.fixture
async def bridge(rig: RigUnderTest, tmp_path: Path) -> AsyncIterator[BridgeApp]:
    app = BridgeApp(rig.config(tmp_path / "audit"), DriverCatalog.from_entry_points())
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
async def client(bridge: BridgeApp) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(bridge.api_address) as c:
        yield c
