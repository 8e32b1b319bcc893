"""Shared fixtures: a bridge on loopback with free ports, and a guard against leaked tasks."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from linebridge.app import BridgeApp
from linebridge.client.raw import RawClient
from linebridge.config import parse_config
from linebridge.devices.catalog import DriverCatalog
from linebridge.model import DeviceState
from tests.mqtt_broker import broker, consumer  # noqa: F401  (fixtures shared by the uplink tests)
from tests.vda5050_helpers import fleet  # noqa: F401  (simulated AGVs on the test broker)

OUR_CODE = ("/bridge/", "/drivers/")

# Property tests are derandomized (the same examples every run, so a red run reproduces) and have no
# per-example deadline (a loaded 2-core machine is not a defect). HYPOTHESIS_PROFILE=explore runs them
# with random seeds to look for new failures.
settings.register_profile("linebridge", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "linebridge"))

# `make test` runs the suite on pytest-xdist workers (`-n`). mDNS on loopback is one medium that every
# process shares: a test that announces or browses would see the devices of a test on another worker (the
# demo and the HIL rig do both, with the same device names). Such modules run on one worker, one test after
# another; every other module is a unit of its own (its module fixtures are built once). A module says it
# shares mDNS by what it calls.
SHARES_MDNS = re.compile(
    r"Zeroconf\(|Advertiser\(|advertise=True|mdns=True|\"advertise\": True|discovery=\{\s*\"enabled\": True"
    r"|\"linebridge\.cli\",\s*\"demo\"|run_loaded\("
)
_shares_mdns: dict[Path, bool] = {}


def shares_mdns(path: Path) -> bool:
    """Whether the test module at `path` announces or browses mDNS (or runs the demo or the HIL rig)."""
    if path not in _shares_mdns:
        _shares_mdns[path] = "hil_tests" in path.parts or bool(SHARES_MDNS.search(path.read_text()))
    return _shares_mdns[path]


def xdist_unit(root: Path, nodeid: str) -> str:
    """The unit of work a test belongs to: "mdns" for every mDNS module, else its module."""
    module = nodeid.split("::", 1)[0]
    return "mdns" if shares_mdns(root / module) else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Schedule by module, with every mDNS module in one unit (largest unit first: it is the long pole).

    A scheduler of our own rather than `--dist loadgroup` with `xdist_group` marks: that side channel
    rewrites node ids, which pytest 9.2's node ids no longer allow (pytest-xdist issue #1386)."""
    from xdist.scheduler import LoadScopeScheduling

    class CellScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_unit(config.rootpath, nodeid)

    return CellScheduling(config, log)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves one of our tasks running (library internals are not ours to judge)."""
    yield
    # A task of ours still running 2 s after the test's teardown is a leak; one that is finishing its
    # cancellation cleanup (a driver closing its sockets on a loaded machine) is not.
    for _ in range(200):
        await asyncio.sleep(0.01)
        leaked = _running_tasks_of_ours()
        if not leaked:
            break
    assert not leaked, f"test leaked tasks: {leaked}"


def _running_tasks_of_ours() -> list[str]:
    current = asyncio.current_task()
    leaked = []
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        code = getattr(coro, "cr_code", None) or getattr(coro, "ag_code", None)
        filename = getattr(code, "co_filename", "")
        if task is not current and not task.done() and any(part in filename for part in OUR_CODE):
            leaked.append(task.get_name() + " " + getattr(coro, "__qualname__", ""))
    return leaked


@pytest.fixture
def catalog() -> DriverCatalog:
    return DriverCatalog.from_entry_points()


def make_config(devices: list[dict[str, Any]] | None = None, **sections: Any) -> Any:
    data: dict[str, Any] = {
        "bridge": {"id": "test-bridge"},
        "grpc": {"address": "127.0.0.1:0", "grace_seconds": 0},
        "metrics": {"enabled": False},
        "discovery": {"enabled": False},
        "sessions": {
            "backoff_initial_seconds": 0.05,
            "backoff_max_seconds": 0.2,
            "connect_timeout_seconds": 3,
        },
        "devices": devices or [],
        # Off unless a test asks for it: nothing may write into the working directory.
        "audit": {"enabled": False},
    }
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    return parse_config(data, "test-config", env={})


BridgeFactory = Callable[..., Awaitable[BridgeApp]]


@pytest.fixture
async def start_bridge(catalog: DriverCatalog, tmp_path: Path) -> AsyncIterator[BridgeFactory]:
    """Start bridges with the given devices, each auditing into a folder of its own under tmp_path; all
    are stopped after the test."""
    apps: list[BridgeApp] = []

    async def start(devices: list[dict[str, Any]] | None = None, **sections: Any) -> BridgeApp:
        sections["audit"] = {
            "enabled": True,
            "path": str(tmp_path / f"audit-{len(apps)}"),
            **sections.get("audit", {}),
        }
        config = make_config(devices, **sections)
        catalog.check(config, "test-config")
        app = BridgeApp(config, catalog)
        await app.start()
        apps.append(app)
        return app

    yield start
    for app in apps:
        await app.stop()


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[BridgeApp], RawClient]]:
    clients: list[RawClient] = []

    def make(app: BridgeApp) -> RawClient:
        client = RawClient(app.api_address)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def wait_for_state(app: BridgeApp, device_id: str, *states: DeviceState, timeout: float = 10.0) -> None:
    """Wait until the device is in one of `states` (fails the test with the last state seen)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        record = app.registry.find(device_id)
        if record is not None and record.state in states:
            return
        await asyncio.sleep(0.02)
    record = app.registry.find(device_id)
    seen = "absent" if record is None else f"{record.state.name} ({record.state_reason})"
    raise AssertionError(f"device {device_id} never reached {[s.name for s in states]}; last {seen}")


@pytest.fixture
async def ur_sim() -> AsyncIterator[Any]:
    """A UR simulator on free loopback ports, fast state transitions, not advertised."""
    from linebridge.drivers.ur.simulator import SimConfig, UrSimulator

    simulator = UrSimulator(SimConfig(mdns=False, transition_delay=0.01, unlock_delay=0.0))
    await simulator.start()
    yield simulator
    await simulator.stop()


def sim_device(device_id: str = "sim-1", **options: Any) -> dict[str, Any]:
    return {"id": device_id, "driver": "sim", "endpoint": f"sim://{device_id}", "options": options}
