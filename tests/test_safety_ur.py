"""The generic safety gates against the UR simulator over real RTDE/Dashboard TCP: the bridge refuses first,
naming its own rule; the UR driver's checks stay behind it as a second line."""

from __future__ import annotations

import math

import grpc

from linebridge.api import pb
from linebridge.model import DeviceState
from tests.conftest import BridgeFactory, wait_for_state
from tests.gates_helpers import audit_records, events_of, eventually, move_joints, refusal

HOME = [0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0]
NO_METADATA: tuple[tuple[str, str], ...] = ()
# Narrower than the driver's own limits (+-2 pi rad, 1 rad/s), so the bridge's gate is the one that refuses.
POLICY = {
    "motion_enabled": True,
    "require": {"safety/mode": 1, "robot/mode": 7, "status/remote_control": True},
    "joint_limits": [[-math.pi, math.pi]] * 6,
    "max_joint_speed": 0.5,
}


def latest(app, path: str):
    found = app.bus.value_of(app.registry.get("ur-1").signals[path].alias)
    return None if found is None else found[0]


async def test_ur_motion_waits_for_running_normal_remote_and_stays_inside_the_bridge_limits(
    start_bridge: BridgeFactory, ur_sim
):
    app = await start_bridge(
        [
            {
                "id": "ur-1",
                "driver": "ur",
                "endpoint": ur_sim.endpoint,
                "options": {"motion_enabled": True, "dashboard_poll_interval": 0.05},
            }
        ],
        policies={"ur-*": POLICY},
    )
    await wait_for_state(app, "ur-1", DeviceState.ONLINE)
    await eventually(
        lambda: latest(app, "robot/mode") is not None and latest(app, "status/remote_control") is not None,
        "the robot's modes on the bus",
    )
    error = await refusal(app, move_joints("ur-1", HOME), NO_METADATA)  # powered off
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION and "[require robot/mode]" in error.details()

    release = pb.command.ExecuteRequest(
        device_id="ur-1", invoke=pb.command.InvokeAction(method="brake_release")
    )
    assert (await events_of(app, release, NO_METADATA))[-1].state == pb.command.COMMAND_STATE_SUCCEEDED
    await eventually(lambda: latest(app, "robot/mode") == 7, "robot mode RUNNING on the bus")

    beyond = [*HOME[:5], 4.0]  # inside the driver's +-2 pi, outside this cell's +-pi
    error = await refusal(app, move_joints("ur-1", beyond), NO_METADATA)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and "[joint_limits]" in error.details()
    assert "policies['ur-*']" in error.details()  # the bridge's rule, not the driver's
    error = await refusal(app, move_joints("ur-1", HOME, speed=0.8), NO_METADATA)
    assert "[max_joint_speed]" in error.details() and "0.5 rad/s" in error.details()
    assert ur_sim.scripts == []  # nothing reached the controller

    near = [HOME[0] + 0.05, *HOME[1:]]
    events = await events_of(app, move_joints("ur-1", near, speed=0.5), NO_METADATA)
    assert events[-1].state == pb.command.COMMAND_STATE_SUCCEEDED and len(ur_sim.scripts) == 1

    ur_sim.robot.protective_stop()
    await eventually(lambda: latest(app, "safety/mode") != 1, "the protective stop on the bus")
    error = await refusal(app, move_joints("ur-1", HOME), NO_METADATA)
    assert "[require safety/mode]" in error.details() and len(ur_sim.scripts) == 1
    messages = [r["outcome"]["message"] for r in audit_records(app, "command.rejected")]
    assert [
        next(rule for rule in ("robot/mode", "joint_limits", "max_joint_speed", "safety/mode") if rule in m)
        for m in messages
    ] == ["robot/mode", "joint_limits", "max_joint_speed", "safety/mode"]
