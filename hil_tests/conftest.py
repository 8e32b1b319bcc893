"""HIL suite fixtures: the rig (simulators by default, real devices with --rig) and a bridge for it."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from hil_tests.rig import Rig, RigDevice, load_rig
from linebridge.app import BridgeApp
from linebridge.client import Client
from linebridge.config import parse_config
from linebridge.devices.catalog import DriverCatalog
from tests.conftest import no_leaked_tasks  # noqa: F401  (the same leak guard as the unit tests)

DEFAULT_RIG = Path(__file__).parent / "rigs" / "simulated-cell.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--rig", default=None, help="rig file (YAML); default: simulators on loopback")


@dataclass
class Simulator:
    """A simulator child process, restartable on the port it first got."""

    device: RigDevice
    process: subprocess.Popen[str] | None = None
    endpoint: str = ""
    port_args: list[str] = field(default_factory=list)  # after the first start: the ports it got

    def start(self) -> None:
        # The ports it got at first start come last, so on a restart they win over "--port 0".
        cmd = [
            sys.executable,
            "-m",
            "linebridge.cli",
            "sim",
            self.device.simulator,
            "--name",
            self.device.id,
            *self.device.simulator_args,
            *self.port_args,
        ]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 30
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                line = self.process.stdout.readline()
                if line.startswith("READY "):
                    self.endpoint = line.split(None, 1)[1].strip()
                    self.port_args = self._same_ports()
                    return
                if not line and self.process.poll() is not None:
                    break
        self.stop()
        raise RuntimeError(f"simulator {self.device.simulator} for {self.device.id} did not become ready")

    def _same_ports(self) -> list[str]:
        """Arguments that restart the simulator on the ports it reported (--port P, or --X-port P
        for each X=P in the endpoint's query, as the UR simulator reports its three servers)."""
        parts = urlsplit(self.endpoint)
        query = parse_qsl(parts.query)
        if query:
            return [arg for key, value in query for arg in (f"--{key}-port", value)]
        return ["--port", str(parts.port)]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class RigUnderTest:
    """The rig and, for simulated devices, their processes."""

    rig: Rig
    simulators: dict[str, Simulator]
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
    sims = {d.id: Simulator(d) for d in loaded.devices if d.simulator and not path}
    try:
        for sim in sims.values():
            sim.start()
        yield RigUnderTest(loaded, sims, real=bool(path))
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
async def client(bridge: BridgeApp) -> AsyncIterator[Client]:
    async with Client(bridge.api_address) as c:
        yield c
