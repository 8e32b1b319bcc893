"""Roles per RPC through a real gRPC channel: viewer reads, operator commands, admin approves; denials
are PERMISSION_DENIED with the reason, reach nothing, and are audited."""

from __future__ import annotations

import json

import grpc
import pytest
from grpc_health.v1 import health_pb2

from linebridge.api import pb
from linebridge.api.auth import REQUIRED_ROLE, required_role
from linebridge.client.raw import RawClient, value_message
from linebridge.model import DeviceState, Role
from tests.conftest import sim_device, wait_for_state
from tests.security_helpers import rpc_error, write_tokens

Code = grpc.StatusCode
ROLES = {"viewer": "viewer", "op": "operator", "boss": "admin"}


@pytest.fixture
async def secured(start_bridge, tmp_path):
    """A loopback bridge that takes bearer tokens only: viewer, op(erator), boss (admin), and an unmapped one."""
    tokens = write_tokens(tmp_path / "tokens", [*ROLES, "stranger"])
    app = await start_bridge(
        [sim_device("sim-1", signals=2, rate_hz=50)],
        security={
            "tokens_file": str(tmp_path / "tokens"),
            "identities": {f"token:{n}": r for n, r in ROLES.items()},
        },
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    clients = {name: RawClient(app.api_address, token=token) for name, token in tokens.items()}
    clients["nobody"] = RawClient(app.api_address)
    yield app, clients
    for client in clients.values():
        await client.close()


def write(value: float) -> pb.command.ExecuteRequest:
    return pb.command.ExecuteRequest(
        device_id="sim-1",
        write=pb.command.WriteAction(
            writes=[pb.command.SignalWrite(path="setpoint", value=value_message(value))]
        ),
    )


def audit_records(app) -> list[dict]:
    return [json.loads(line) for line in app.audit.path.read_text().splitlines()]


def test_every_linebridge_rpc_has_an_explicit_role():
    """A new RPC must be placed in the table on purpose; unlisted methods need ADMIN (closed by default)."""
    for module, service in (
        (pb.device, "DeviceService"),
        (pb.telemetry, "TelemetryService"),
        (pb.command, "CommandService"),
        (pb.bridge, "BridgeService"),
    ):
        for method in module.DESCRIPTOR.services_by_name[service].methods:
            assert f"/linebridge.v1.{service}/{method.name}" in REQUIRED_ROLE
    assert required_role("/linebridge.v1.BridgeService/SomethingNew") is Role.ADMIN
    assert required_role("/grpc.health.v1.Health/Check") is None


async def test_viewer_reads_but_cannot_command_and_nothing_reaches_the_device(secured):
    app, clients = secured
    viewer = clients["viewer"]
    assert [d.id for d in await viewer.list_devices()] == ["sim-1"]
    read = await viewer.telemetry.Read(pb.telemetry.ReadRequest(paths=["sim-1/setpoint"]))
    assert read.values[0].path == "sim-1/setpoint"
    once = [
        u async for u in viewer.telemetry.Subscribe(pb.telemetry.SubscribeRequest(paths=["sim-1/*"], mode=2))
    ]
    assert once[0].WhichOneof("update") == "catalog"
    assert (await viewer.bridge.GetInfo(pb.bridge.GetInfoRequest())).bridge_id == "test-bridge"
    await viewer.commands.ListCommands(pb.command.ListCommandsRequest())

    for request in (write(99.0), pb.command.ExecuteRequest(device_id="sim-1", stop=pb.command.StopAction())):
        error = await rpc_error(viewer.execute(request))
        assert error.code() is Code.PERMISSION_DENIED
        assert error.details() == "token:viewer has role viewer; CommandService.Execute needs operator"
    cancel = await rpc_error(viewer.commands.Cancel(pb.command.CancelRequest(command_id="x")))
    assert cancel.code() is Code.PERMISSION_DENIED
    driver = app.driver_of("sim-1")
    assert driver.state["setpoint"] == 0.0 and driver.stopped == 0, "nothing reached the device"
    assert app.commands.list("", 100) == [], "nothing reached the command manager"
    denied = [r for r in audit_records(app) if r["type"] == "rpc.denied"]
    assert denied and denied[0]["who"]["name"] == "token:viewer"
    assert denied[0]["what"]["method"] == "/linebridge.v1.CommandService/Execute"


async def test_operator_commands_as_itself_but_cannot_approve(secured):
    app, clients = secured
    events = await clients["op"].execute(write(12.5))
    assert events[-1].state == pb.command.COMMAND_STATE_SUCCEEDED
    assert app.driver_of("sim-1").state["setpoint"] == 12.5
    spec = app.commands.get(events[-1].command_id).spec
    assert spec.identity is not None and (spec.identity.name, spec.identity.role) == (
        "token:op",
        Role.OPERATOR,
    )
    assert spec.identity.peer.startswith("ipv4:127.0.0.1:")
    error = await rpc_error(
        clients["op"].bridge.ApproveDevice(pb.bridge.ApproveDeviceRequest(device_id="sim-1"))
    )
    assert error.code() is Code.PERMISSION_DENIED and "needs admin" in error.details()


async def test_get_info_tells_each_caller_who_it_is_and_its_role(secured):
    _, clients = secured
    seen = {}
    for name in ("viewer", "op", "boss"):
        caller = (await clients[name].bridge.GetInfo(pb.bridge.GetInfoRequest())).caller
        seen[name] = (caller.name, pb.bridge.CallerRole.Name(caller.role))
    assert seen == {
        "viewer": ("token:viewer", "CALLER_ROLE_VIEWER"),
        "op": ("token:op", "CALLER_ROLE_OPERATOR"),
        "boss": ("token:boss", "CALLER_ROLE_ADMIN"),
    }


async def test_admin_passes_every_role_check(secured):
    _, clients = secured
    boss = clients["boss"]
    error = await rpc_error(boss.bridge.ApproveDevice(pb.bridge.ApproveDeviceRequest(device_id="nope")))
    assert error.code() is Code.NOT_FOUND  # admitted; the device is simply unknown
    approved = await boss.bridge.ApproveDevice(pb.bridge.ApproveDeviceRequest(device_id="sim-1"))
    assert approved.device.id == "sim-1"  # a configured device is allowed already: returned unchanged
    assert (await boss.execute(write(3.0)))[-1].state == pb.command.COMMAND_STATE_SUCCEEDED


async def test_unauthenticated_and_unmapped_callers(secured):
    app, clients = secured
    missing = await rpc_error(clients["nobody"].list_devices())
    assert missing.code() is Code.UNAUTHENTICATED and "no credentials" in missing.details()
    unmapped = await rpc_error(clients["stranger"].list_devices())
    assert unmapped.code() is Code.PERMISSION_DENIED
    assert unmapped.details().startswith("token:stranger has no role on this bridge")
    health = await clients["nobody"].channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )(health_pb2.HealthCheckRequest())
    # liveness probes need no identity, and the answer is the real status, not just any answer
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_without_authentication_a_loopback_caller_is_a_local_admin(start_bridge, client_for):
    """Today's behaviour for the demo, the CLI and the tests: no security section, loopback, full rights."""
    app = await start_bridge([sim_device("sim-1", signals=1, rate_hz=20)])
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    events = await client_for(app).execute(write(1.0))
    identity = app.commands.get(events[-1].command_id).spec.identity
    assert identity is not None and (identity.name, identity.role) == ("local", Role.ADMIN)
    caller = (await client_for(app).bridge.GetInfo(pb.bridge.GetInfoRequest())).caller
    assert (caller.name, caller.role) == ("local", pb.bridge.CALLER_ROLE_ADMIN)
