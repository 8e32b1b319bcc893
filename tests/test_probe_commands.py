"""Regressions from the fault probe (issue #12): command timeouts, idempotency, cancel, Stop and the audit."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from linebridge.api import pb
from linebridge.devices.catalog import DriverCatalog
from linebridge.drivers.sim.driver import SimDriver
from linebridge.errors import ConfigError
from linebridge.model import DeviceState, Identity, Role
from tests.conftest import BridgeFactory, make_config, sim_device, wait_for_state
from tests.gates_helpers import (
    ArmDriver,
    arm_device,
    audit_records,
    callers,
    events_of,
    eventually,
    move_joints,
    refusal,
    stop,
    write,
)

Code = grpc.StatusCode
SUCCEEDED = pb.command.COMMAND_STATE_SUCCEEDED
NO_METADATA: tuple[tuple[str, str], ...] = ()
ALICE = Identity("alice", Role.OPERATOR, "ipv4:127.0.0.1:4242", "grpc")


def test_a_default_timeout_above_the_maximum_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        make_config(commands={"default_timeout_seconds": 900, "max_timeout_seconds": 600})
    assert "commands: default_timeout_seconds (900)" in str(info.value)
    assert "max_timeout_seconds (600)" in str(info.value)


async def test_stop_is_never_refused_by_a_timeout_setting(start_bridge: BridgeFactory):
    app = await start_bridge(
        [sim_device("sim-1", signals=1, rate_hz=20)],
        commands={"default_timeout_seconds": 1, "max_timeout_seconds": 5},
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    sim = app.driver_of("sim-1")
    request = stop("sim-1")
    request.timeout.CopyFrom(Duration(seconds=900))  # over the maximum: a Stop still runs
    assert (await events_of(app, request, NO_METADATA))[-1].state == SUCCEEDED
    assert sim.stopped == 1  # type: ignore[attr-defined]
    # A manager whose default is over its maximum (built outside the config check): the deadman still stops.
    app.commands.default_timeout = 900
    deadman = app.commands.deadman("sim-1", ALICE, interval=0.05)
    await eventually(lambda: sim.stopped == 2, "the deadman's stop")  # type: ignore[attr-defined]
    assert not deadman.armed


@pytest.fixture
def catalog() -> DriverCatalog:
    return DriverCatalog({"arm": ArmDriver, "sim": SimDriver})


ARM_POLICY = {"motion_enabled": True, "program_enabled": True, "allow_without_require": True}


def _keyed(request: pb.command.ExecuteRequest, key: str, timeout: int = 0) -> pb.command.ExecuteRequest:
    request.idempotency_key = key
    if timeout:
        request.timeout.CopyFrom(Duration(seconds=timeout))
    return request


def _program(name: str) -> pb.command.ExecuteRequest:
    return pb.command.ExecuteRequest(device_id="arm-1", run_program=pb.command.RunProgramAction(program=name))


async def _first_event(app, request: pb.command.ExecuteRequest) -> pb.command.CommandEvent:
    async with grpc.aio.insecure_channel(app.api_address) as channel:
        call = pb.command_grpc.CommandServiceStub(channel).Execute(request)
        event = await call.read()
        call.cancel()
        return event


async def test_reusing_an_idempotency_key_for_another_request_is_refused(start_bridge: BridgeFactory):
    app = await start_bridge([arm_device("arm-1", move_seconds=30.0)], policies={"arm-*": ARM_POLICY})
    await wait_for_state(app, "arm-1", DeviceState.ONLINE)
    first = await _first_event(app, _keyed(move_joints("arm-1", [0.1] * 6, speed=0.5), "k-1"))
    same = await _first_event(app, _keyed(move_joints("arm-1", [0.1] * 6, speed=0.5), "k-1"))
    assert same.command_id == first.command_id  # the same request: the same command, not a second one
    changed = [
        _keyed(move_joints("arm-1", [0.2] * 6, speed=0.5), "k-1"),  # another target
        _keyed(move_joints("arm-1", [0.1] * 6, speed=0.9), "k-1"),  # another speed
        _keyed(move_joints("arm-1", [0.1] * 6, speed=0.5), "k-1", timeout=20),  # another timeout
    ]
    await _first_event(app, _keyed(_program("a.urp"), "k-2"))
    changed.append(_keyed(_program("b.urp"), "k-2"))  # another program
    for request in changed:
        error = await refusal(app, request, NO_METADATA)
        assert error.code() is Code.INVALID_ARGUMENT, request
        assert "used for a different command" in error.details()
    arm = app.driver_of("arm-1")
    await eventually(lambda: arm.executed, "the first motion on the arm")  # type: ignore[attr-defined]
    assert len(arm.executed) == 1  # type: ignore[attr-defined]  # one motion: the retry did not run another


async def test_suppressed_rate_limit_refusals_are_counted_when_the_window_closes(
    start_bridge: BridgeFactory, tmp_path
):
    security, metadata = callers(tmp_path, {"fast": "operator"})
    app = await start_bridge(
        [sim_device("sim-1", signals=1, rate_hz=20)],
        security=security,
        commands={"rate_limits": {"identity": {"rate": 0.01, "burst": 1}}},
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    assert (await events_of(app, write("sim-1", "setpoint", 1.0), metadata["fast"]))[-1].state == SUCCEEDED
    for n in range(5):  # refused: the first is recorded, the other four fall in its one-second window
        error = await refusal(app, write("sim-1", "setpoint", float(n)), metadata["fast"])
        assert error.code() is Code.RESOURCE_EXHAUSTED
    await eventually(
        lambda: len(audit_records(app, "command.rejected")) == 2, "the record closing the window", timeout=5
    )
    first, closing = audit_records(app, "command.rejected")
    assert "suppressed" not in first and closing["suppressed"] == 3  # 1 + 3 + 1 = the 5 refusals
    assert closing["who"]["name"] == "token:fast" and closing["outcome"]["reason"] == "RATE_LIMITED"


def _label(text: str) -> pb.command.ExecuteRequest:
    return pb.command.ExecuteRequest(
        device_id="sim-1",
        write=pb.command.WriteAction(
            writes=[pb.command.SignalWrite(path="label", value=pb.common.Value(string_value=text))]
        ),
    )


def _echo(text: str) -> pb.command.ExecuteRequest:
    return pb.command.ExecuteRequest(
        device_id="sim-1",
        invoke=pb.command.InvokeAction(method="Echo", args=[pb.common.Value(string_value=text)]),
    )


async def test_string_writes_and_method_arguments_have_a_size_cap(start_bridge: BridgeFactory):
    app = await start_bridge([sim_device("sim-1", signals=1, rate_hz=20)])
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    sim = app.driver_of("sim-1")
    fits = "x" * (64 << 10)
    assert (await events_of(app, _label(fits), NO_METADATA))[-1].state == SUCCEEDED
    assert sim.state["label"] == fits  # type: ignore[attr-defined]
    for request in (_label(fits + "y"), _echo("é" * (33 << 10))):  # 65537 bytes; 67584 bytes of UTF-8
        error = await refusal(app, request, NO_METADATA)
        assert error.code() is Code.INVALID_ARGUMENT
        assert "bytes is over the cap of 65536 bytes (commands.max_value_bytes)" in error.details()
    assert sim.state["label"] == fits  # type: ignore[attr-defined]  # nothing reached the device


async def test_cancel_needs_the_commands_role_and_records_who_cancelled(
    start_bridge: BridgeFactory, tmp_path
):
    security, metadata = callers(tmp_path, {"op": "operator", "boss": "admin", "chief": "admin"})
    policy = {**ARM_POLICY, "roles": {"motion": "admin"}}
    app = await start_bridge(
        [arm_device("arm-1", move_seconds=30.0)], policies={"arm-*": policy}, security=security
    )
    await wait_for_state(app, "arm-1", DeviceState.ONLINE)
    async with grpc.aio.insecure_channel(app.api_address) as channel:
        stub = pb.command_grpc.CommandServiceStub(channel)
        moving = stub.Execute(move_joints("arm-1", [0.3] * 6), metadata=metadata["boss"])
        command_id = (await moving.read()).command_id
        with pytest.raises(grpc.aio.AioRpcError) as info:  # an operator may not cancel an admin-only motion
            await stub.Cancel(pb.command.CancelRequest(command_id=command_id), metadata=metadata["op"])
        assert (
            info.value.code() is Code.PERMISSION_DENIED
            and "motion refused [roles.motion]" in info.value.details()
        )
        assert app.commands.get(command_id).state.name in ("QUEUED", "RUNNING")
        answer = await stub.Cancel(
            pb.command.CancelRequest(command_id=command_id), metadata=metadata["chief"]
        )
        assert answer.command.cancelled_by == "token:chief" and answer.command.cancelled.seconds > 0
        events = [await moving.read()]
        while not events[-1].state >= pb.command.COMMAND_STATE_SUCCEEDED:
            events.append(await moving.read())
    assert events[-1].state == pb.command.COMMAND_STATE_CANCELLED
    assert events[-1].cancelled_by == "token:chief"
    denied = [r for r in audit_records(app, "command.cancel") if r["result"] == "failure"]
    assert [r["who"]["name"] for r in denied] == ["token:op"] and denied[0]["what"][
        "command_id"
    ] == command_id
    await eventually(lambda: audit_records(app, "command.finished"), "the outcome record")
    finished = audit_records(app, "command.finished")[-1]
    assert finished["who"]["name"] == "token:boss" and finished["outcome"]["state"] == "CANCELLED"
    assert finished["cancelled_by"]["name"] == "token:chief" and finished["cancelled_by"]["time"].endswith(
        "Z"
    )
