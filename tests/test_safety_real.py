"""Safety paths on real protocols: a lapsed Jog heartbeat, gRPC Cancel, TIMED_OUT and a preempting Stop,
against the Universal Robots simulator (RTDE + Dashboard + secondary interface over TCP) and the OPC UA
robot simulator (its own process, so a test can hang it with SIGSTOP).

Each proves the device's own state afterwards (the UR script halted, runtime STOPPED; the OPC UA program
state Stopped), not only the bridge's view of the command.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from google.protobuf.duration_pb2 import Duration

from linebridge.api import pb
from linebridge.drivers.ur.sim_robot import RobotMode, RuntimeState
from linebridge.hil.sim_process import SimProcess
from linebridge.model import DeviceState
from tests.conftest import BridgeFactory, wait_for_state
from tests.gates_helpers import events_of, eventually, move_joints, stop

NO_METADATA: tuple[tuple[str, str], ...] = ()
FAR = [1.2, -0.4, 0.5, -2.6, -0.5, 1.0]  # far enough from home that a slow move takes many seconds
SLOW = 0.05  # rad/s
UR_POLICY = {
    "motion_enabled": True,
    "require": {"safety/mode": 1, "robot/mode": 7, "status/remote_control": True},
    "max_joint_speed": 1.0,
}


def _latest(app, path: str):
    found = app.bus.value_of(app.registry.get("ur-1").signals[path].alias)
    return None if found is None else found[0]


async def _ur_bridge(start_bridge: BridgeFactory, ur_sim):
    device = {
        "id": "ur-1",
        "driver": "ur",
        "endpoint": ur_sim.endpoint,
        "options": {"motion_enabled": True, "dashboard_poll_interval": 0.05},
    }
    app = await start_bridge([device], policies={"ur-*": UR_POLICY})
    await wait_for_state(app, "ur-1", DeviceState.ONLINE)
    release = pb.command.ExecuteRequest(
        device_id="ur-1", invoke=pb.command.InvokeAction(method="brake_release")
    )
    assert (await events_of(app, release, NO_METADATA))[-1].state == pb.command.COMMAND_STATE_SUCCEEDED
    await eventually(lambda: ur_sim.robot.robot_mode == RobotMode.RUNNING, "the UR robot RUNNING")
    await eventually(lambda: _latest(app, "robot/mode") == 7, "robot mode RUNNING on the bus")
    return app


def _playing(ur_sim) -> bool:
    return ur_sim.robot.runtime_state == RuntimeState.PLAYING


def _halted(ur_sim) -> bool:
    return ur_sim.robot.runtime_state == RuntimeState.STOPPED and not ur_sim.robot.running_program


async def _started(client, request: pb.command.ExecuteRequest) -> tuple[str, asyncio.Task]:
    """Execute in the background; the command id once it is RUNNING, and the task with all its events."""
    events: list[pb.command.CommandEvent] = []
    running = asyncio.Event()

    async def follow() -> list[pb.command.CommandEvent]:
        async for event in client.commands.Execute(request):
            events.append(event)
            if event.state == pb.command.COMMAND_STATE_RUNNING:
                running.set()
        return events

    task = asyncio.create_task(follow())
    async with asyncio.timeout(15):
        await running.wait()
    return events[0].command_id, task


async def test_ur_jog_whose_heartbeat_lapses_halts_the_script(start_bridge, client_for, ur_sim):
    app = await _ur_bridge(start_bridge, ur_sim)
    call = client_for(app).commands.Jog()
    await call.write(
        pb.command.JogRequest(
            start=pb.command.JogStart(device_id="ur-1", deadman_interval=Duration(nanos=400_000_000))
        )
    )
    await call.write(
        pb.command.JogRequest(move_joints=pb.command.MoveJointsAction(positions=FAR, speed=SLOW))
    )
    accepted = (await call.read()).event
    await eventually(lambda: _playing(ur_sim), "the jog target's script running on the controller")
    # The holder goes silent with its stream still open: only the deadman can stop the robot now.
    await eventually(lambda: _halted(ur_sim), "the script halted by the deadman's Stop", timeout=10)
    assert ur_sim.robot.q != pytest.approx(FAR, abs=1e-3), "stopped before reaching the target"
    record = app.commands.get(accepted.command_id)
    await eventually(lambda: record.state.final, "the jog target to end")
    assert record.error_reason == "PREEMPTED"
    call.cancel()


async def test_ur_grpc_cancel_of_a_running_motion_halts_the_script(start_bridge, client_for, ur_sim):
    app = await _ur_bridge(start_bridge, ur_sim)
    client = client_for(app)
    command_id, task = await _started(client, move_joints("ur-1", FAR, speed=SLOW))
    await eventually(lambda: _playing(ur_sim), "the motion script running")
    await client.commands.Cancel(pb.command.CancelRequest(command_id=command_id))
    events = await asyncio.wait_for(task, 15)
    assert events[-1].state == pb.command.COMMAND_STATE_CANCELLED
    await eventually(lambda: _halted(ur_sim), "the script halted after the cancel")


async def test_ur_motion_past_its_timeout_ends_timed_out_and_halts(start_bridge, client_for, ur_sim):
    app = await _ur_bridge(start_bridge, ur_sim)
    request = move_joints("ur-1", FAR, speed=SLOW)
    request.timeout.FromMilliseconds(1500)
    events = await events_of(app, request, NO_METADATA)
    assert events[-1].state == pb.command.COMMAND_STATE_TIMED_OUT
    assert any(e.state == pb.command.COMMAND_STATE_RUNNING for e in events), "it ran before it timed out"
    await eventually(lambda: _halted(ur_sim), "the script halted after the timeout")


async def test_ur_stop_preempts_a_running_motion(start_bridge, client_for, ur_sim):
    app = await _ur_bridge(start_bridge, ur_sim)
    client = client_for(app)
    command_id, task = await _started(client, move_joints("ur-1", FAR, speed=SLOW))
    await eventually(lambda: _playing(ur_sim), "the motion script running")
    stopped = await events_of(app, stop("ur-1"), NO_METADATA)
    assert stopped[-1].state == pb.command.COMMAND_STATE_SUCCEEDED
    events = await asyncio.wait_for(task, 15)
    assert events[-1].state == pb.command.COMMAND_STATE_CANCELLED
    assert app.commands.get(command_id).error_reason == "PREEMPTED"
    assert _halted(ur_sim)


# --- OPC UA robot: its program is the motion; hanging the server (SIGSTOP) keeps a call running. ---


@pytest.fixture
async def opcua_robot() -> AsyncIterator[SimProcess]:
    process = SimProcess("opcua-robot", "safety-robot", ["--no-mdns", "--port", "0", "--rate", "20"])
    await asyncio.to_thread(process.start)
    yield process
    await asyncio.to_thread(process.stop)


async def _opcua_bridge(start_bridge: BridgeFactory, robot: SimProcess):
    # liveness_seconds 0: these tests keep commands running on a hung server, which the default liveness
    # bound (1.2 s) would end by taking the device OFFLINE (tests/test_staleness.py proves that part).
    device = {
        "id": "rob-1",
        "driver": "opcua",
        "endpoint": robot.endpoint,
        "options": {},
        "liveness_seconds": 0,
    }
    app = await start_bridge([device])
    await wait_for_state(app, "rob-1", DeviceState.ONLINE, timeout=30)
    return app


def _invoke(method: str, *args: str) -> pb.command.ExecuteRequest:
    values = [pb.common.Value(string_value=a) for a in args]
    return pb.command.ExecuteRequest(
        device_id="rob-1", invoke=pb.command.InvokeAction(method=method, args=values)
    )


async def _program_state(client) -> str:
    """The robot's program state read from the device itself, not from the bridge's cache."""
    read = await client.telemetry.Read(
        pb.telemetry.ReadRequest(paths=["rob-1/program/state"], from_device=True)
    )
    return read.values[0].value.string_value


async def test_opcua_deadman_lapse_stops_the_running_program(start_bridge, client_for, opcua_robot):
    app = await _opcua_bridge(start_bridge, opcua_robot)
    client = client_for(app)
    started = await events_of(app, _invoke("StartProgram", "weld"), NO_METADATA)
    assert started[-1].state == pb.command.COMMAND_STATE_SUCCEEDED
    assert (await _program_state(client)).lower() == "running"
    deadman = app.commands.deadman("rob-1", None, interval=0.3)  # held while the program runs, never beaten
    await eventually(lambda: deadman.tripped == "heartbeat lapsed", "the deadman to trip")
    states: list[str] = []
    for _ in range(200):  # up to ~10 s of reads from the device
        states.append(await _program_state(client))
        if states[-1].lower() == "stopped":
            break
        await asyncio.sleep(0.05)
    assert states[-1].lower() == "stopped"


async def test_opcua_cancel_timeout_and_stop_on_a_hung_server(start_bridge, client_for, opcua_robot):
    app = await _opcua_bridge(start_bridge, opcua_robot)
    client = client_for(app)
    opcua_robot.pause()  # the server hangs with its socket open: a call now stays RUNNING
    try:
        # gRPC Cancel of a running call
        command_id, task = await _started(client, _invoke("StartProgram", "weld"))
        await client.commands.Cancel(pb.command.CancelRequest(command_id=command_id))
        assert (await asyncio.wait_for(task, 15))[-1].state == pb.command.COMMAND_STATE_CANCELLED
        # a call past its timeout
        timed = _invoke("StartProgram", "weld")
        timed.timeout.FromMilliseconds(800)
        events = await events_of(app, timed, NO_METADATA)
        assert events[-1].state == pb.command.COMMAND_STATE_TIMED_OUT
        # a Stop preempts a running call, and reaches the robot once it answers again
        command_id, task = await _started(client, _invoke("StartProgram", "weld"))
        stop_task = asyncio.create_task(events_of(app, stop("rob-1"), NO_METADATA))
        assert (await asyncio.wait_for(task, 15))[-1].state == pb.command.COMMAND_STATE_CANCELLED
        assert app.commands.get(command_id).error_reason == "PREEMPTED"
    finally:
        opcua_robot.resume()
    assert (await asyncio.wait_for(stop_task, 30))[-1].state == pb.command.COMMAND_STATE_SUCCEEDED
    assert (await _program_state(client)).lower() == "stopped"
