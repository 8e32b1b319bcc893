"""Motion and program safety gates through a real gRPC channel, each refusal with its audit record."""

from __future__ import annotations

import asyncio
import math

import grpc
import pytest

from linebridge.api import pb
from linebridge.devices.catalog import DriverCatalog
from linebridge.drivers.sim.driver import SimDriver
from linebridge.model import DeviceState
from tests.conftest import BridgeFactory, wait_for_state
from tests.gates_helpers import (
    ArmDriver,
    arm_device,
    audit_records,
    callers,
    events_of,
    eventually,
    move_joints,
    move_linear,
    refusal,
    stop,
)

Code = grpc.StatusCode
SUCCEEDED = pb.command.COMMAND_STATE_SUCCEEDED
LIMITS = [[-math.pi, math.pi]] * 5 + [[-1.0, 1.0]]
SAFE = {"safety/protective_stop": False, "safety/emergency_stop": False, "safety/operational_mode": 3}
GUARDED = {
    "motion_enabled": True,
    "program_enabled": True,
    "require": SAFE,
    "joint_limits": LIMITS,
    "workspace": {"x": [-0.5, 0.5], "y": [-0.5, 0.5], "z": [0.0, 0.8]},
    "max_joint_speed": 1.0,
    "max_tcp_speed": 0.25,
    "method_classes": {"StartProgram": "program"},
}


@pytest.fixture
def catalog() -> DriverCatalog:
    return DriverCatalog({"arm": ArmDriver, "sim": SimDriver})


@pytest.fixture
async def cell(start_bridge: BridgeFactory, tmp_path):
    """A bridge with a guarded arm (arm-1) and one with default policy (arm-2); alice is an operator."""
    security, meta = callers(tmp_path, {"alice": "operator"})
    app = await start_bridge(
        [arm_device("arm-1", move_seconds=5.0), arm_device("arm-2")],
        security=security,
        policies={"arm-1": GUARDED},
    )
    for device in ("arm-1", "arm-2"):
        await wait_for_state(app, device, DeviceState.ONLINE)
    await eventually(
        lambda: app.bus.value_of(app.registry.get("arm-1").signals["safety/operational_mode"].alias),
        "the first values of arm-1",
    )
    return app, meta["alice"]


def last_refusal(app, device: str) -> dict:
    records = [r for r in audit_records(app, "command.rejected") if r["what"]["device"] == device]
    assert records, "no command.rejected audit record"
    return records[-1]


async def test_motion_is_off_unless_the_device_policy_enables_it(cell):
    app, alice = cell
    error = await refusal(app, move_joints("arm-2", [0.1] * 6), alice)
    assert error.code() is Code.FAILED_PRECONDITION
    assert "[motion_enabled]" in error.details() and "the default policy" in error.details()
    record = last_refusal(app, "arm-2")
    assert record["who"]["name"] == "token:alice" and record["who"]["role"] == "operator"
    assert record["what"]["arguments"]["joint_positions"] == [0.1] * 6
    assert (
        record["outcome"]["reason"] == "FAILED_PRECONDITION"
        and "[motion_enabled]" in record["outcome"]["message"]
    )
    assert app.driver_of("arm-2").executed == []  # type: ignore[attr-defined]


async def test_programs_are_off_unless_enabled(cell):
    app, alice = cell
    request = pb.command.ExecuteRequest(
        device_id="arm-2", run_program=pb.command.RunProgramAction(program="pick")
    )
    error = await refusal(app, request, alice)
    assert error.code() is Code.FAILED_PRECONDITION and "[program_enabled]" in error.details()
    assert last_refusal(app, "arm-2")["what"]["class"] == "program"


@pytest.mark.parametrize(
    ("signal", "value", "rule"),
    [
        ("safety/protective_stop", True, "[require safety/protective_stop]"),
        ("safety/emergency_stop", True, "[require safety/emergency_stop]"),
        ("safety/operational_mode", 2, "[require safety/operational_mode]"),  # 2 = MANUAL_REDUCED
    ],
)
async def test_motion_needs_the_required_safety_state(cell, signal, value, rule):
    app, alice = cell
    arm = app.driver_of("arm-1")
    alias = app.registry.get("arm-1").signals[signal].alias
    arm.state[signal] = value  # type: ignore[attr-defined]
    await eventually(lambda: app.bus.value_of(alias)[0] == value, f"{signal} = {value} on the bus")
    error = await refusal(app, move_joints("arm-1", [0.1] * 6), alice)
    assert (
        error.code() is Code.FAILED_PRECONDITION
        and rule in error.details()
        and f"is {value!r}" in error.details()
    )
    assert rule in last_refusal(app, "arm-1")["outcome"]["message"]
    assert arm.executed == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("request_", "rule"),
    [
        (move_joints("arm-1", [0.1] * 5 + [1.5]), "[joint_limits]"),
        (move_joints("arm-1", [0.1] * 5), "[joint_limits]"),  # five targets for six joints
        (move_joints("arm-1", [0.1] * 6, speed=1.5), "[max_joint_speed]"),
        (move_linear("arm-1", 0.2, 0.9, 0.3), "[workspace]"),
        (move_linear("arm-1", 0.2, 0.1, -0.1), "[workspace]"),
        (move_linear("arm-1", 0.2, 0.1, 0.3, speed=0.5), "[max_tcp_speed]"),
    ],
    ids=["joint-6-beyond", "five-targets", "joint-speed", "y-outside", "z-below", "tcp-speed"],
)
async def test_targets_outside_the_limits_are_refused(cell, request_, rule):
    app, alice = cell
    error = await refusal(app, request_, alice)
    assert (
        error.code() is Code.INVALID_ARGUMENT
        and rule in error.details()
        and "policies['arm-1']" in error.details()
    )
    assert rule in last_refusal(app, "arm-1")["outcome"]["message"]
    assert app.driver_of("arm-1").executed == []  # type: ignore[attr-defined]


async def test_a_method_classed_as_program_meets_the_program_gates(cell):
    app, alice = cell
    arm = app.driver_of("arm-1")
    start = pb.command.ExecuteRequest(
        device_id="arm-1",
        invoke=pb.command.InvokeAction(method="StartProgram", args=[pb.common.Value(string_value="pick")]),
    )
    arm.state["safety/protective_stop"] = True  # type: ignore[attr-defined]
    alias = app.registry.get("arm-1").signals["safety/protective_stop"].alias
    await eventually(lambda: app.bus.value_of(alias)[0] is True, "the protective stop on the bus")
    error = await refusal(app, start, alice)
    assert (
        error.code() is Code.FAILED_PRECONDITION
        and "program refused [require safety/protective_stop]" in error.details()
    )
    assert last_refusal(app, "arm-1")["what"]["class"] == "program"
    arm.state["safety/protective_stop"] = False  # type: ignore[attr-defined]
    await eventually(lambda: app.bus.value_of(alias)[0] is False, "the protective stop released")
    assert (await events_of(app, start, alice))[-1].state == SUCCEEDED


async def test_a_safe_move_runs_and_is_audited_before_and_after(cell):
    app, alice = cell
    arm = app.driver_of("arm-1")
    arm.options = arm.options.model_copy(update={"move_seconds": 0.0})  # type: ignore[attr-defined]
    events = await events_of(app, move_joints("arm-1", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], speed=0.5), alice)
    assert events[-1].state == SUCCEEDED
    assert arm.executed[-1].joint_positions == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # type: ignore[attr-defined]
    command_id = events[-1].command_id
    mine = [r for r in audit_records(app) if r.get("what", {}).get("command_id") == command_id]
    assert [r["type"] for r in mine] == ["command.accepted", "command.finished"]
    assert mine[0]["result"] == "success" and mine[1]["outcome"]["state"] == "SUCCEEDED"
    assert mine[0]["what"]["class"] == "motion" and mine[0]["who"]["peer"].startswith("ipv4:127.0.0.1")


async def test_stop_jumps_the_queue_and_cancels_queued_motion(cell):
    app, alice = cell
    arm = app.driver_of("arm-1")  # moves take 5 s here
    running = events_of(app, move_joints("arm-1", [0.1] * 6), alice)
    queued = events_of(app, move_joints("arm-1", [0.2] * 6), alice)
    tasks = [asyncio.create_task(running), asyncio.create_task(queued)]
    states = lambda: sorted(r.state.name for r in app.commands.list("arm-1"))  # noqa: E731
    await eventually(
        lambda: states() == ["QUEUED", "RUNNING"] and len(arm.executed) == 1,  # type: ignore[attr-defined]
        "one move running on the arm, one queued",
    )
    stopped = await events_of(app, stop("arm-1"), alice)
    assert stopped[-1].state == SUCCEEDED and arm.stopped == 1  # type: ignore[attr-defined]
    first, second = await asyncio.gather(*tasks)
    assert first[-1].state == second[-1].state == pb.command.COMMAND_STATE_CANCELLED
    assert "stop" in second[-1].error.message
    assert len(arm.executed) == 1  # type: ignore[attr-defined]  # the queued move never reached the arm
    finished = {
        r["what"]["command_id"]: r["outcome"]["state"] for r in audit_records(app, "command.finished")
    }
    assert finished[first[-1].command_id] == finished[second[-1].command_id] == "CANCELLED"
    assert finished[stopped[-1].command_id] == "SUCCEEDED"
