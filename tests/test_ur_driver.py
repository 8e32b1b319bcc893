"""UrDriver against the real simulator over loopback TCP: connect, stream, commands, motion."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pydantic import ValidationError

from linebridge.drivers.base import (
    CommandKind,
    CommandRequest,
    DeviceError,
    DeviceKind,
    DriverContext,
    FailedPrecondition,
    InvalidArgument,
    MdnsService,
    Pose,
    StreamHints,
    Unavailable,
)
from linebridge.drivers.ur import catalog, sim_servers
from linebridge.drivers.ur.catalog import RobotMode, RuntimeState
from linebridge.drivers.ur.driver import UrDriver
from linebridge.drivers.ur.options import UrOptions, parse_endpoint

TARGET_Q = [0.3, -1.4, 1.5, -1.6, -1.5, 0.2]
TARGET_POSE = Pose(-0.40, -0.15, 0.45, 2.2, 2.2, 0.0)


class RecordingSink:
    """Collects what a driver publishes."""

    def __init__(self) -> None:
        self.batches, self.degraded_reasons = [], []

    def publish(self, batch) -> None:
        self.batches.append(batch)

    def degraded(self, reason) -> None:
        self.degraded_reasons.append(reason)

    def alive(self) -> None:
        self.keepalives = getattr(self, "keepalives", 0) + 1


@pytest.fixture
async def connect(ur_sim):
    drivers = []

    async def make(**options) -> tuple[UrDriver, object]:
        driver = UrDriver(
            DriverContext("ur-1", ur_sim.endpoint, UrOptions(**options), logging.getLogger("test.ur"))
        )
        drivers.append(driver)
        description = await driver.connect()
        for alias, signal in enumerate(description.signals, start=1):
            signal.alias = alias
        return driver, description

    yield make
    for driver in drivers:
        await driver.close()


def noop(progress: float, message: str) -> None:
    """A progress callback that ignores progress."""


async def call(driver, description, method: str, *args):
    spec = next(m for m in description.methods if m.name == method)
    return (await driver.call(spec, list(args), noop))[0]


async def make_ready(driver, description, ur_sim) -> None:
    await call(driver, description, "brake_release")
    for _ in range(300):
        if ur_sim.robot.robot_mode == RobotMode.RUNNING:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("robot did not reach RUNNING")


async def test_connect_describes_the_robot(connect, ur_sim):
    driver, description = await connect()
    assert description.kind is DeviceKind.ROBOT
    assert (description.vendor, description.model) == ("Universal Robots", "UR5")
    assert (
        description.serial_number == ur_sim.info.serial and description.identity == f"ur:{ur_sim.info.serial}"
    )
    paths = {s.path: s for s in description.signals}
    for joint in range(1, 7):
        assert paths[f"joints/{joint}/actual_position"].unit == "rad"
    assert paths["tcp/pose/x"].unit == "m" and paths["tcp/pose/rz"].unit == "rad"
    assert paths["tcp/force/fz"].unit == "N" and "safety/mode" in paths and "program/runtime_state" in paths
    assert paths["status/remote_control"].change_detection == "polled-compare"
    assert {
        CommandKind.MOVE_JOINTS,
        CommandKind.MOVE_LINEAR,
        CommandKind.RUN_PROGRAM,
        CommandKind.PAUSE_PROGRAM,
        CommandKind.STOP,
        CommandKind.INVOKE,
    } <= description.commands
    assert {"power_on", "brake_release", "unlock_protective_stop", "close_safety_popup"} <= {
        m.name for m in description.methods
    }
    diagnostics = driver.diagnostics()
    assert diagnostics["controller_version"] == "5.15.0.118022" and diagnostics["rtde_protocol"] == "2"


async def test_stream_batches_packets_without_sequence_gaps(connect):
    driver, description = await connect()
    sink = RecordingSink()
    task = asyncio.create_task(driver.stream(description.signals, sink, StreamHints()))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    timestamp_alias = next(s.alias for s in description.signals if s.path == "controller/timestamp")
    stamps = [
        v for b in sink.batches for a, v in zip(b.aliases, b.values, strict=True) if a == timestamp_alias
    ]
    steps = {round(b - a, 6) for a, b in zip(stamps, stamps[1:], strict=False)}
    assert len(stamps) > 10 and steps == {0.002}  # every 2 ms controller cycle arrived, in order
    counters = driver.stream_counters()
    assert counters["gaps"] == 0 and counters["packets"] >= len(stamps)
    rtde_count = sum(1 for s in description.signals if s.source_type != "dashboard")
    multi = [b for b in sink.batches if len(b) > rtde_count]
    assert multi, "packets should be batched, not published one by one"
    assert all(len(b) % rtde_count == 0 for b in sink.batches if len(b) >= rtde_count)
    # The Dashboard poll arrives as its own signal with the controller's answer (the simulator: true).
    remote = next(s.alias for s in description.signals if s.path == "status/remote_control")
    polled = [v for b in sink.batches for a, v in zip(b.aliases, b.values, strict=True) if a == remote]
    assert polled and all(v is True for v in polled)


async def test_vector_elements_become_signals_with_live_values(connect, ur_sim):
    driver, description = await connect()
    wanted = [
        s for s in description.signals if s.path.startswith("joints/") and s.path.endswith("actual_position")
    ]
    wanted += [s for s in description.signals if s.path in ("robot/mode", "program/loaded")]
    batch = await driver.read(wanted)
    assert batch.values[:6] == pytest.approx(list(ur_sim.robot.q))
    assert batch.values[6] == RobotMode.POWER_OFF and batch.values[7] == ""
    assert batch.aliases == [s.alias for s in wanted]


async def test_power_brakes_and_program_lifecycle(connect, ur_sim):
    driver, description = await connect()
    assert await call(driver, description, "power_on") == "Powering on"
    await make_ready(driver, description, ur_sim)
    assert await call(driver, description, "robot_mode") == "RUNNING"
    steps = []
    result = await driver.execute(
        CommandRequest(CommandKind.RUN_PROGRAM, program="/programs/pick.urp"), lambda p, m: steps.append(p)
    )
    assert ur_sim.robot.runtime_state == RuntimeState.PLAYING  # SUCCEEDED only once it is running
    assert result.values == ["/programs/pick.urp"] and steps[-1] == 1.0
    await driver.execute(CommandRequest(CommandKind.PAUSE_PROGRAM), noop)
    assert ur_sim.robot.runtime_state == RuntimeState.PAUSED
    await driver.execute(CommandRequest(CommandKind.STOP), noop)
    assert ur_sim.robot.runtime_state == RuntimeState.STOPPED


async def test_run_program_fails_with_the_controller_message(connect, ur_sim):
    driver, description = await connect()
    with pytest.raises(DeviceError, match="File not found: /programs/missing.urp"):
        await driver.execute(CommandRequest(CommandKind.RUN_PROGRAM, program="/programs/missing.urp"), noop)
    with pytest.raises(DeviceError, match="Failed to execute: play"):  # powered off
        await driver.execute(CommandRequest(CommandKind.RUN_PROGRAM, program="/programs/pick.urp"), noop)
    ur_sim.set_remote_control(False)
    with pytest.raises(DeviceError, match="switch robot to Remote Control"):
        await driver.execute(CommandRequest(CommandKind.RUN_PROGRAM, program="/programs/pick.urp"), noop)


async def test_move_joints_reaches_the_target(connect, ur_sim):
    driver, description = await connect(motion_enabled=True)
    await make_ready(driver, description, ur_sim)
    progress = []
    result = await driver.execute(
        CommandRequest(CommandKind.MOVE_JOINTS, joint_positions=TARGET_Q, speed=1.0),
        lambda p, m: progress.append(p),
    )
    assert "reached" in result.message
    assert ur_sim.robot.q == pytest.approx(TARGET_Q, abs=1e-6)
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
    assert "movej([0.300000, -1.400000" in ur_sim.scripts[0].text and "v=1.000000" in ur_sim.scripts[0].text


async def test_move_linear_reaches_the_pose(connect, ur_sim):
    driver, description = await connect(motion_enabled=True)
    await make_ready(driver, description, ur_sim)
    await driver.execute(CommandRequest(CommandKind.MOVE_LINEAR, pose=TARGET_POSE, speed=0.25), noop)
    pose = ur_sim.robot.values["actual_TCP_pose"]
    assert pose == pytest.approx([-0.40, -0.15, 0.45, 2.2, 2.2, 0.0], abs=1e-4)


@pytest.mark.parametrize(
    "options,request_kwargs,error,rule",
    [
        ({}, {"joint_positions": TARGET_Q}, FailedPrecondition, "motion_enabled"),
        (
            {"motion_enabled": True},
            {"joint_positions": [0, 0, 7.0, 0, 0, 0]},
            InvalidArgument,
            "joint_limits",
        ),
        (
            {"motion_enabled": True, "joint_limits": [[-1, 1]] * 6},
            {"joint_positions": TARGET_Q},
            InvalidArgument,
            "joint_limits",
        ),
        (
            {"motion_enabled": True},
            {"joint_positions": TARGET_Q, "speed": 3.0},
            InvalidArgument,
            "max_joint_speed",
        ),
        ({"motion_enabled": True}, {"joint_positions": TARGET_Q[:5]}, InvalidArgument, "target"),
        ({"motion_enabled": True}, {"pose": TARGET_POSE, "speed": 1.0}, InvalidArgument, "max_tcp_speed"),
        (
            {"motion_enabled": True, "workspace": [[-0.3, 0.3], [-1, 1], [0, 1]]},
            {"pose": TARGET_POSE},
            InvalidArgument,
            "workspace",
        ),
    ],
)
async def test_motion_refused_by_configured_rules_with_nothing_sent(
    connect, ur_sim, options, request_kwargs, error, rule
):
    driver, description = await connect(**options)
    await make_ready(driver, description, ur_sim)
    kind = CommandKind.MOVE_LINEAR if "pose" in request_kwargs else CommandKind.MOVE_JOINTS
    with pytest.raises(error, match=rf"motion refused \[{rule}\]"):
        await driver.execute(CommandRequest(kind, **request_kwargs), noop)
    assert ur_sim.scripts == []


async def test_motion_refused_by_robot_state_with_nothing_sent(connect, ur_sim):
    driver, description = await connect(motion_enabled=True)
    request = CommandRequest(CommandKind.MOVE_JOINTS, joint_positions=TARGET_Q)
    with pytest.raises(FailedPrecondition, match=r"\[robot_mode\].*POWER_OFF"):
        await driver.execute(request, noop)
    await make_ready(driver, description, ur_sim)
    ur_sim.set_remote_control(False)
    with pytest.raises(FailedPrecondition, match=r"\[remote_control\]"):
        await driver.execute(request, noop)
    ur_sim.set_remote_control(True)
    ur_sim.protective_stop()
    with pytest.raises(FailedPrecondition, match=r"\[safety_mode\].*PROTECTIVE_STOP"):
        await driver.execute(request, noop)
    assert ur_sim.scripts == []
    assert await call(driver, description, "unlock_protective_stop") == "Protective stop releasing"
    await driver.execute(CommandRequest(CommandKind.RUN_PROGRAM, program="/programs/pick.urp"), noop)
    with pytest.raises(FailedPrecondition, match=r"\[program_running\]"):
        await driver.execute(request, noop)
    assert ur_sim.scripts == []


async def test_protective_stop_during_motion_fails_the_command(connect, ur_sim):
    driver, description = await connect(motion_enabled=True)
    await make_ready(driver, description, ur_sim)
    move = asyncio.create_task(
        driver.execute(CommandRequest(CommandKind.MOVE_JOINTS, joint_positions=TARGET_Q, speed=0.2), noop)
    )
    for _ in range(300):
        if ur_sim.robot.runtime_state == RuntimeState.PLAYING:
            break
        await asyncio.sleep(0.01)
    ur_sim.protective_stop()
    with pytest.raises(DeviceError, match="PROTECTIVE_STOP"):
        await move


async def test_cancelled_motion_stops_the_program(connect, ur_sim):
    driver, description = await connect(motion_enabled=True)
    await make_ready(driver, description, ur_sim)
    move = asyncio.create_task(
        driver.execute(CommandRequest(CommandKind.MOVE_JOINTS, joint_positions=TARGET_Q, speed=0.1), noop)
    )
    for _ in range(300):
        if ur_sim.robot.runtime_state == RuntimeState.PLAYING:
            break
        await asyncio.sleep(0.01)
    move.cancel()
    with pytest.raises(asyncio.CancelledError):
        await move
    assert ur_sim.robot.runtime_state == RuntimeState.STOPPED
    assert ur_sim.robot.q != pytest.approx(TARGET_Q, abs=1e-3)


async def test_stream_raises_and_reports_degraded_when_the_robot_goes_away(connect, ur_sim):
    driver, description = await connect()
    sink = RecordingSink()
    task = asyncio.create_task(driver.stream(description.signals[:3], sink, StreamHints()))
    for _ in range(500):
        if sink.batches:
            break
        await asyncio.sleep(0.01)
    await ur_sim.stop()
    with pytest.raises(Unavailable):
        await asyncio.wait_for(task, 5)
    assert sink.degraded_reasons and sink.degraded_reasons[-1]


async def test_variables_unknown_to_the_controller_are_left_out(connect, monkeypatch):
    monkeypatch.delitem(catalog.OUTPUT_TYPES, "joint_temperatures")  # an older controller
    driver, description = await connect()
    paths = {s.path for s in description.signals}
    assert "joints/1/temperature" not in paths and "joints/1/actual_position" in paths
    assert driver.diagnostics()["unsupported_variables"] == "joint_temperatures"


async def test_dashboard_queries_unknown_to_the_controller_are_left_out(connect, monkeypatch):
    answer = sim_servers.DashboardSession.reply

    def cb_series(session, command: str) -> str:  # no Local/Remote switch before e-Series
        if command == "is in remote control":
            return f"could not understand: '{command}'"
        return answer(session, command)

    monkeypatch.setattr(sim_servers.DashboardSession, "reply", cb_series)
    _, description = await connect()
    paths = {s.path for s in description.signals}
    assert "status/remote_control" not in paths and "program/loaded" in paths


def test_endpoint_forms():
    options = UrOptions(dashboard_port=1234)
    plain = parse_endpoint("ur://10.0.0.5", options)
    assert (plain.rtde_port, plain.dashboard_port, plain.secondary_port) == (30004, 1234, 30002)
    full = parse_endpoint("ur://127.0.0.1?rtde=5&dashboard=6&secondary=7", options)
    assert (full.rtde_port, full.dashboard_port, full.secondary_port) == (5, 6, 7)
    assert parse_endpoint("ur://127.0.0.1:31000", options).rtde_port == 31000
    for junk in ("opc.tcp://x", "ur://", "ur://h?rtde=abc", "ur://h?rtde=70000", "ur://h?foo=1"):
        with pytest.raises(InvalidArgument):
            parse_endpoint(junk, options)


def test_options_validation():
    with pytest.raises(ValidationError, match="joint_limits"):
        UrOptions(joint_limits=[[1, -1]] * 6)
    with pytest.raises(ValidationError, match="default_tcp_speed"):
        UrOptions(max_tcp_speed=0.05)
    with pytest.raises(ValidationError):
        UrOptions(frequency=1000)
    with pytest.raises(ValidationError):
        UrOptions(unknown_key=1)


def test_from_mdns():
    service = MdnsService(
        "_ur-rtde._tcp.local.", "ur-7", "127.0.0.1", 30104, {"dashboard": "30105", "secondary": "30106"}
    )
    device = UrDriver.from_mdns(service)
    assert device.device_id == "ur-7"
    assert device.endpoint == "ur://127.0.0.1?rtde=30104&dashboard=30105&secondary=30106"
    defaults = UrDriver.from_mdns(MdnsService("_ur-rtde._tcp.local.", "ur-8", "127.0.0.1", 30004))
    assert defaults.endpoint.endswith("dashboard=29999&secondary=30002")
    for junk in ({"dashboard": "lots"}, {"secondary": "-1"}):
        with pytest.raises(InvalidArgument):
            UrDriver.from_mdns(MdnsService("_ur-rtde._tcp.local.", "ur-9", "127.0.0.1", 30004, junk))
    with pytest.raises(InvalidArgument):
        UrDriver.from_mdns(MdnsService("_ur-rtde._tcp.local.", " ", "127.0.0.1", 30004))


async def test_rtde_lost_mid_motion_stops_the_program(connect, ur_sim):
    """Issue 12, defect 12: after RTDE dropped the robot finished the motion unwatched."""
    driver, description = await connect(motion_enabled=True)
    await make_ready(driver, description, ur_sim)
    move = asyncio.create_task(
        driver.execute(CommandRequest(CommandKind.MOVE_JOINTS, joint_positions=TARGET_Q, speed=0.1), noop)
    )
    for _ in range(300):
        if ur_sim.robot.runtime_state == RuntimeState.PLAYING:
            break
        await asyncio.sleep(0.01)
    assert ur_sim.drop_rtde() >= 1
    with pytest.raises(Unavailable):
        await asyncio.wait_for(move, 10)
    assert ur_sim.robot.runtime_state == RuntimeState.STOPPED  # stopped by the driver, not left running
    assert ur_sim.robot.q != pytest.approx(TARGET_Q, abs=1e-3)
