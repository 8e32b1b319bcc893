"""Discovery approval over real mDNS on loopback: unmatched devices stay DISCOVERED (visible, no session)
until an admin approves them; auto-approve rules; approvals kept in a file across a restart."""

from __future__ import annotations

import asyncio
import secrets
import sys

import grpc
import pytest

from linebridge.api import pb
from linebridge.app import BridgeApp
from linebridge.client.raw import RawClient
from linebridge.devices.approval import rule_matches
from linebridge.devices.catalog import DriverCatalog
from linebridge.drivers.base import MdnsService
from linebridge.drivers.mdns import Advertiser
from linebridge.errors import ConfigError
from linebridge.model import DeviceState
from linebridge.security.config import ApprovalRule
from tests.conftest import make_config, wait_for_state
from tests.security_helpers import rpc_error, write_tokens
from tests.test_cli import run
from tests.test_discovery import TEST_TYPE, AdvertisedSim

Code = grpc.StatusCode
RUN = secrets.token_hex(3)  # instance names of this run: a parallel run on the same host announces its own
ROBOT = MdnsService("_opcua-tcp._tcp.local.", "robot-7", "127.0.0.1", 4840, {"path": "/", "model": "UR10e"})


@pytest.mark.parametrize(
    ("rule", "matches"),
    [
        ({"service_type": "_opcua-tcp._tcp"}, True),
        ({"service_type": "_opcua-tcp._tcp.local."}, True),
        ({"service_type": "_modbus._tcp"}, False),
        ({"name": "robot-*"}, True),
        ({"name": "Robot-*"}, False),  # case-sensitive, like the ids the devices get
        ({"txt": {"MODEL": "UR*"}}, True),  # TXT keys are case-insensitive (RFC 6763 §6.4), values globbed
        ({"txt": {"model": "KUKA*"}}, False),
        ({"txt": {"serial": "*"}}, False),  # a key the service does not have
        ({"service_type": "_opcua-tcp._tcp", "name": "robot-*", "txt": {"path": "/"}}, True),
        ({"service_type": "_opcua-tcp._tcp", "name": "plc-*"}, False),  # every given field must match
    ],
)
def test_rule_matching(rule, matches):
    assert rule_matches(ApprovalRule(**rule), ROBOT) is matches


def test_an_empty_rule_is_a_config_error():
    with pytest.raises(ConfigError, match=r"discovery\.auto_approve\[0\].*needs service_type, name or txt"):
        make_config(discovery={"auto_approve": [{}]})


async def discovering_bridge(approvals_file: str = "", **security) -> BridgeApp:
    config = make_config(
        discovery={
            "enabled": True,
            "interfaces": ["127.0.0.1"],
            "advertise": False,
            "auto_approve": [{"service_type": TEST_TYPE, "name": f"trusted-{RUN}-*"}],
            "approvals_file": approvals_file,
        },
        security=security,
    )
    app = BridgeApp(config, DriverCatalog({"adsim": AdvertisedSim}))
    await app.start()
    return app


async def appears(app: BridgeApp, device_id: str) -> None:
    for _ in range(500):
        if app.registry.find(device_id) is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{device_id} was never discovered")


async def test_unmatched_device_waits_for_an_admin(tmp_path):
    tokens = write_tokens(tmp_path / "tokens", ["viewer", "op", "boss"])
    app = await discovering_bridge(
        tokens_file=str(tmp_path / "tokens"),
        identities={"token:viewer": "viewer", "token:op": "operator", "token:boss": "admin"},
    )
    trusted, visitor = f"trusted-{RUN}-1", f"visitor-{RUN}"
    ads = [Advertiser(TEST_TYPE, trusted, 7101, {"signals": "2"}), Advertiser(TEST_TYPE, visitor, 7102, {})]
    clients = {name: RawClient(app.api_address, token=token) for name, token in tokens.items()}
    try:
        for ad in ads:
            await ad.start()
        await wait_for_state(app, trusted, DeviceState.ONLINE)  # matched the rule: connected at once
        await appears(app, visitor)
        listed = {d.id: d for d in await clients["viewer"].list_devices()}
        assert listed[visitor].state == pb.device.DEVICE_STATE_DISCOVERED
        assert listed[visitor].state_reason == "waiting for approval by an admin"
        assert visitor not in app.sessions and app.driver_of(visitor) is None  # nothing connects to it
        approve = pb.bridge.ApproveDeviceRequest(device_id=visitor)
        for name in ("viewer", "op"):
            error = await rpc_error(clients[name].bridge.ApproveDevice(approve))
            assert error.code() is Code.PERMISSION_DENIED and "needs admin" in error.details()
        assert visitor not in app.sessions
        approved = await clients["boss"].bridge.ApproveDevice(approve)
        assert approved.device.id == visitor
        await wait_for_state(app, visitor, DeviceState.ONLINE)
        again = await clients["boss"].bridge.ApproveDevice(approve)  # idempotent
        assert again.device.state == pb.device.DEVICE_STATE_ONLINE
    finally:
        for client in clients.values():
            await client.close()
        for ad in ads:
            await ad.stop()
        await app.stop()


async def test_approval_by_cli_is_kept_across_a_restart(tmp_path):
    approvals = tmp_path / "state" / "approvals.json"
    guest = f"guest-{RUN}"
    ad = Advertiser(TEST_TYPE, guest, 7103, {})
    await ad.start()
    try:
        app = await discovering_bridge(str(approvals))
        try:
            await appears(app, guest)
            code, out, err = await run(
                sys.executable, "-m", "linebridge.cli", "approve", guest, "--target", app.api_address
            )
            assert code == 0 and f"{guest}: approved" in out, err
            await wait_for_state(app, guest, DeviceState.ONLINE)
        finally:
            await app.stop()
        assert guest in approvals.read_text()
        app = await discovering_bridge(str(approvals))  # a restart: the approval is remembered
        try:
            # mDNS re-query backoff (RFC 6762 §5.2) under a loaded machine: allow more than the default
            await wait_for_state(app, guest, DeviceState.ONLINE, timeout=30)
        finally:
            await app.stop()
    finally:
        await ad.stop()
