"""Issue 12, defect 1: foreign mDNS announcements and identity pinning, over real mDNS on loopback with
two real OPC UA robot simulators."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator

import pytest

from linebridge.app import BridgeApp
from linebridge.devices.catalog import DriverCatalog
from linebridge.drivers.mdns import Advertiser
from linebridge.drivers.modbus.simulator import CellPlcSimulator
from linebridge.model import DeviceState
from tests.conftest import make_config, wait_for_state
from tests.gates_helpers import eventually
from tests.opcua_helpers import ThreadedSimulator

RUN = secrets.token_hex(3)  # names of this run: other runs on the host announce their own
OPCUA = "_opcua-tcp._tcp.local."


@pytest.fixture(scope="module")
def robots() -> Iterator[tuple[ThreadedSimulator, ThreadedSimulator]]:
    a, b = (
        ThreadedSimulator(name=f"real-a-{RUN}", rate_hz=20),
        ThreadedSimulator(name=f"real-b-{RUN}", rate_hz=20),
    )
    a.start()
    b.start()
    yield a, b
    a.stop()
    b.stop()


def port_of(host: ThreadedSimulator) -> int:
    return int(host.sim.endpoint.rsplit(":", 1)[1].split("/")[0])


async def bridge(tmp_path, catalog: DriverCatalog, rule: dict[str, str] | None = None) -> BridgeApp:
    config = make_config(
        discovery={
            "enabled": True,
            "interfaces": ["127.0.0.1"],
            "advertise": False,
            "auto_approve": [rule or {"service_type": "_opcua-tcp._tcp", "name": f"probe-rob-{RUN}-*"}],
            "approvals_file": str(tmp_path / "approvals.json"),
        },
        audit={"enabled": False},
    )
    app = BridgeApp(config, catalog)
    await app.start()
    return app


async def test_foreign_announcements_change_nothing_and_a_changed_identity_is_not_used(
    robots, tmp_path, catalog: DriverCatalog, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="linebridge.devices.manager")
    robot_a, robot_b = robots
    device = f"probe-rob-{RUN}-a"
    real = Advertiser(OPCUA, device, port_of(robot_a), {"path": "/"})
    foreign = Advertiser("_modbus._tcp.local.", device, 15020, {"map": "cell-plc"})
    app = await bridge(tmp_path, catalog)
    try:
        await real.start()
        await wait_for_state(app, device, DeviceState.ONLINE, timeout=30)
        good = app.registry.get(device).endpoint
        assert str(port_of(robot_a)) in good
        # 1. Another service type, same instance name, no rule allows it: ignored, the device stays as it is.
        await foreign.start()
        refusal = (
            f"ignoring {device}._modbus._tcp.local. at modbus+tcp://127.0.0.1:15020: it matches no approval"
        )
        await eventually(lambda: refusal in caplog.text, "the refusal", 30)
        assert app.registry.get(device).endpoint == good
        assert app.registry.get(device).state in (DeviceState.ONLINE, DeviceState.DEGRADED)
        await foreign.stop()
        # 2. The same name at another robot's port: the move is tried, the identity differs, nothing is used.
        await real.move(port_of(robot_b))
        await wait_for_state(app, device, DeviceState.DISCOVERED, timeout=30)
        record = app.registry.get(device)
        assert record.state_reason.startswith("identity changed: approved as 'urn:")
        assert robot_b.sim.application_uri in record.state_reason
        assert app.driver_of(device) is None
        # 3. The announcement goes away: back to the last good endpoint, the approved robot, online.
        await real.stop()
        await wait_for_state(app, device, DeviceState.ONLINE, timeout=30)
        assert app.registry.get(device).endpoint == good
        assert app.approvals.identities[device] == robot_a.sim.application_uri
    finally:
        await real.stop()
        await foreign.stop()
        await app.stop()


async def test_moves_stay_within_a_service_type_and_an_admin_approves_a_changed_identity(
    robots, tmp_path, catalog: DriverCatalog, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="linebridge.devices.manager")
    robot_a, robot_b = robots
    device = f"probe-rob-{RUN}-b"
    ad = Advertiser(OPCUA, device, port_of(robot_a), {"path": "/"})
    foreign = Advertiser("_modbus._tcp.local.", device, 15021, {"map": "cell-plc"})
    app = await bridge(tmp_path, catalog, {"name": f"probe-rob-{RUN}-*"})  # a rule for any service type
    try:
        await ad.start()
        await wait_for_state(app, device, DeviceState.ONLINE, timeout=30)
        good = app.registry.get(device).endpoint
        await foreign.start()  # allowed by the rule, but another service type: no move
        await eventually(
            lambda: "a device moves only within its service type" in caplog.text, "the refusal", 30
        )
        assert app.registry.get(device).endpoint == good
        await foreign.stop()
        await ad.move(port_of(robot_b))  # e.g. the robot controller was replaced
        await wait_for_state(app, device, DeviceState.DISCOVERED, timeout=30)
        assert "identity changed" in app.registry.get(device).state_reason
        await app.approve(device)
        await wait_for_state(app, device, DeviceState.ONLINE, timeout=30)
        assert app.approvals.identities[device] == robot_b.sim.application_uri
        pins = (tmp_path / "approvals.json").read_text()
        assert robot_b.sim.application_uri in pins  # kept across restarts
    finally:
        await ad.stop()
        await foreign.stop()
        await app.stop()


async def test_a_modbus_device_that_moves_is_not_held_for_its_address(tmp_path, catalog: DriverCatalog):
    """Modbus TCP has no identity of its own (the driver's is its address): a move is not an identity change."""
    plcs = [CellPlcSimulator(units=(1,), seed=3), CellPlcSimulator(units=(1,), seed=4)]
    for plc in plcs:
        await plc.start()
    device = f"probe-plc-{RUN}"
    ad = Advertiser("_modbus._tcp.local.", device, plcs[0].port, {"map": "cell-plc", "unit": "1"})
    app = await bridge(tmp_path, catalog, {"service_type": "_modbus._tcp", "name": f"probe-plc-{RUN}"})
    try:
        await ad.start()
        await wait_for_state(app, device, DeviceState.ONLINE, timeout=30)
        await ad.move(plcs[1].port)  # the PLC got another address
        await eventually(
            lambda: app.registry.get(device).endpoint.endswith(f":{plcs[1].port}"), "the move", 30
        )
        await wait_for_state(app, device, DeviceState.ONLINE, timeout=30)
        assert device not in app.approvals.identities
    finally:
        await ad.stop()
        await app.stop()
        for plc in plcs:
            await plc.stop()
