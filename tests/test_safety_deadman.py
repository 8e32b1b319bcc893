"""The deadman: a lapsed heartbeat or an ended Jog stream sends the device a Stop (core and through gRPC)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from linebridge.api import pb
from linebridge.devices.catalog import DriverCatalog
from linebridge.drivers.sim.driver import SimDriver
from linebridge.errors import FailedPrecondition
from linebridge.model import DeviceState, Identity, Role
from tests.conftest import BridgeFactory, sim_device, wait_for_state
from tests.gates_helpers import ArmDriver, arm_device, audit_records, eventually

ALICE = Identity("alice", Role.OPERATOR, "ipv4:127.0.0.1:4242", "grpc")
ARM_POLICY = {
    "motion_enabled": True,
    "require": {"safety/protective_stop": False},
    "joint_limits": [[-1.0, 1.0]] * 6,
}


@pytest.fixture
def catalog() -> DriverCatalog:
    return DriverCatalog({"arm": ArmDriver, "sim": SimDriver})


async def test_a_lapsed_heartbeat_sends_stop_and_is_audited(start_bridge: BridgeFactory):
    app = await start_bridge([sim_device("sim-1", signals=1, rate_hz=20)])
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    sim = app.driver_of("sim-1")
    deadman = app.commands.deadman("sim-1", ALICE, interval=0.5)
    for _ in range(5):  # beats well inside the interval keep it armed
        await asyncio.sleep(0.05)
        deadman.beat()
    assert sim.stopped == 0 and deadman.armed  # type: ignore[attr-defined]
    await eventually(lambda: sim.stopped == 1, "the deadman's stop on the device")  # type: ignore[attr-defined]
    assert deadman.tripped == "heartbeat lapsed"
    with pytest.raises(FailedPrecondition, match="no longer armed"):
        deadman.beat()
    (tripped,) = audit_records(app, "deadman.tripped")
    assert tripped["who"]["name"] == "alice" and tripped["what"] == {"device": "sim-1", "interval": 0.5}
    (accepted,) = audit_records(app, "command.accepted")
    assert accepted["what"]["action"] == "stop" and accepted["who"]["name"] == "deadman"
    assert accepted["who"]["peer"] == "alice" and tripped["seq"] < accepted["seq"]
    released = app.commands.deadman("sim-1", ALICE, interval=0.05)
    released.release()
    # A witness armed just after it and never beaten: once its stop has arrived, the released one's
    # interval has certainly passed too, so the absence of a second stop is proven, not hoped for.
    witness = app.commands.deadman("sim-1", ALICE, interval=0.05)
    await eventually(lambda: sim.stopped == 2, "the witness deadman's stop")  # type: ignore[attr-defined]
    assert witness.tripped == "heartbeat lapsed" and released.tripped == ""
    assert len(audit_records(app, "deadman.tripped")) == 2, "only the first and the witness tripped"
    assert sim.stopped == 2  # type: ignore[attr-defined]  # the released deadman sent nothing


async def jog_bridge(start_bridge: BridgeFactory):
    app = await start_bridge([arm_device("arm-1", move_seconds=5.0)], policies={"arm-*": ARM_POLICY})
    await wait_for_state(app, "arm-1", DeviceState.ONLINE)
    alias = app.registry.get("arm-1").signals["safety/protective_stop"].alias
    await eventually(lambda: app.bus.value_of(alias), "the arm's safety state")
    return app, app.driver_of("arm-1")


def start(interval: float) -> pb.command.JogRequest:
    request = pb.command.JogRequest(start=pb.command.JogStart(device_id="arm-1"))
    request.start.deadman_interval.FromMilliseconds(int(interval * 1000))
    return request


def target(position: float) -> pb.command.JogRequest:
    return pb.command.JogRequest(move_joints=pb.command.MoveJointsAction(positions=[position] * 6))


async def test_jog_targets_replace_each_other_and_silence_stops_the_arm(
    start_bridge: BridgeFactory, client_for
):
    app, arm = await jog_bridge(start_bridge)
    call = client_for(app).commands.Jog()
    await call.write(start(0.5))
    await call.write(target(0.1))
    first = (await call.read()).event
    await eventually(lambda: len(arm.executed) == 1, "the first target on the arm")
    await call.write(pb.command.JogRequest(heartbeat=pb.command.JogHeartbeat()))
    await call.write(target(0.2))
    second = (await call.read()).event
    assert first.state == second.state == pb.command.COMMAND_STATE_QUEUED
    replaced = app.commands.get(first.command_id)
    await eventually(lambda: replaced.state.final, "the first target to end")
    assert replaced.state.name == "CANCELLED" and "replaced by the next jog target" in replaced.error_message
    # The client goes silent: the deadman stops the arm and ends the motion it started.
    await eventually(lambda: arm.stopped == 1, "the deadman's stop")
    await eventually(lambda: app.commands.get(second.command_id).state.final, "the second target to end")
    assert app.commands.get(second.command_id).error_reason == "PREEMPTED"
    await call.write(target(0.3))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    assert (
        info.value.code() is grpc.StatusCode.FAILED_PRECONDITION and "no longer armed" in info.value.details()
    )
    assert len(arm.executed) == 2
    (tripped,) = audit_records(app, "deadman.tripped")
    assert tripped["reason"] == "heartbeat lapsed" and tripped["who"]["name"] == "local"


async def test_ending_a_jog_stream_stops_the_arm(start_bridge: BridgeFactory, client_for):
    app, arm = await jog_bridge(start_bridge)
    call = client_for(app).commands.Jog()
    await call.write(start(5.0))
    await call.write(target(0.1))
    await call.read()
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    await eventually(lambda: arm.stopped == 1, "the stop at the end of the stream")
    assert audit_records(app, "deadman.tripped")[0]["reason"] == "jog stream ended"


async def test_a_refused_jog_target_ends_the_stream_and_stops_what_it_moved(
    start_bridge: BridgeFactory, client_for
):
    app, arm = await jog_bridge(start_bridge)
    call = client_for(app).commands.Jog()
    await call.write(start(5.0))
    await call.write(target(0.1))
    await call.read()
    await eventually(lambda: len(arm.executed) == 1, "the first target on the arm")
    await call.write(target(1.5))  # outside the joint limits
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "[joint_limits]" in info.value.details()
    await eventually(lambda: arm.stopped == 1, "the stop after the refusal")
    assert len(arm.executed) == 1
    assert audit_records(app, "command.rejected")[0]["what"]["arguments"]["joint_positions"] == [1.5] * 6
