"""Motion commands: every check before anything is sent, URScript delivery on the secondary
interface, and completion tracked from RTDE state (SUCCEEDED means the robot got there).

Refusals name the rule that refused in brackets, e.g. `motion refused [joint_limits]: ...`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

from linebridge.drivers.base import (
    CommandKind,
    CommandRequest,
    CommandResult,
    DeviceError,
    FailedPrecondition,
    InvalidArgument,
    ProgressFn,
    Unavailable,
)
from linebridge.drivers.tasks import bounded
from linebridge.drivers.ur import script
from linebridge.drivers.ur.catalog import RobotMode, RuntimeState, SafetyMode
from linebridge.drivers.ur.dashboard import COMMANDS_BY_METHOD, DashboardClient, wait_program_state
from linebridge.drivers.ur.kinematics import pose_error
from linebridge.drivers.ur.netio import close_writer
from linebridge.drivers.ur.options import UrOptions
from linebridge.drivers.ur.rtde import ProtocolError
from linebridge.errors import describe

# The monitor recipe; the tracker reads rows by these positions (0 is the recipe id).
MONITOR_NAMES = ("timestamp", "actual_q", "actual_TCP_pose", "runtime_state", "safety_mode", "robot_mode")
_Q, _POSE, _RUNTIME, _SAFETY, _MODE = slice(2, 8), slice(8, 14), 14, 15, 16
_ACTIVE = (RuntimeState.PLAYING, RuntimeState.PAUSING, RuntimeState.PAUSED, RuntimeState.RESUMING)


@dataclass(frozen=True, slots=True)
class MotionTarget:
    """A validated motion: joint target (rad) or pose target (m, rad), speed and acceleration."""

    kind: CommandKind
    target: tuple[float, ...]
    speed: float
    acceleration: float

    def script(self) -> str:
        """The URScript program that performs this motion."""
        if self.kind is CommandKind.MOVE_JOINTS:
            return script.movej_program(self.target, self.speed, self.acceleration)
        return script.movel_program(self.target, self.speed, self.acceleration)


def _refuse(rule: str, reason: str, error: type[Exception] = InvalidArgument) -> Exception:
    return error(f"motion refused [{rule}]: {reason}")


def _limit(value: float, default: float, limit: float, rule: str, what: str, unit: str) -> float:
    """Speed/acceleration 0 means the configured default; anything else must be within the limit."""
    if value == 0:
        return default
    if not math.isfinite(value) or value < 0:
        raise _refuse(rule, f"{what} must be a positive number, got {value!r}")
    if value > limit:
        raise _refuse(rule, f"{what} {value:g} {unit} exceeds the limit {limit:g} {unit}")
    return value


def _six(values: list[float], what: str) -> tuple[float, ...]:
    if len(values) != 6:
        raise _refuse("target", f"{what} needs 6 values, got {len(values)}")
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        raise _refuse("target", f"{what} values must be finite numbers")
    return tuple(float(v) for v in values)


def plan_move(request: CommandRequest, options: UrOptions) -> MotionTarget:
    """Validate a move command against the device options; raise before anything is sent."""
    if not options.motion_enabled:
        raise _refuse(
            "motion_enabled",
            "motion is disabled for this device (set motion_enabled: true in its options)",
            FailedPrecondition,
        )
    if request.kind is CommandKind.MOVE_JOINTS:
        target = _six(request.joint_positions, "joint_positions")
        for joint, (value, (low, high)) in enumerate(zip(target, options.joint_limits, strict=True), start=1):
            if not low <= value <= high:
                raise _refuse(
                    "joint_limits", f"joint {joint} target {value:.4f} rad is outside [{low:.4f}, {high:.4f}]"
                )
        speed = _limit(
            request.speed,
            options.default_joint_speed,
            options.max_joint_speed,
            "max_joint_speed",
            "joint speed",
            "rad/s",
        )
        acceleration = _limit(
            request.acceleration,
            options.default_joint_acceleration,
            options.max_joint_acceleration,
            "max_joint_acceleration",
            "joint acceleration",
            "rad/s^2",
        )
        return MotionTarget(request.kind, target, speed, acceleration)
    if request.pose is None:
        raise _refuse("target", "move_linear needs a pose")
    pose = request.pose
    target = _six([pose.x, pose.y, pose.z, pose.rx, pose.ry, pose.rz], "pose")
    for axis, value, (low, high) in zip("xyz", target, options.workspace or (), strict=False):
        if not low <= value <= high:
            raise _refuse("workspace", f"{axis} = {value:.4f} m is outside [{low:.4f}, {high:.4f}]")
    speed = _limit(
        request.speed, options.default_tcp_speed, options.max_tcp_speed, "max_tcp_speed", "TCP speed", "m/s"
    )
    acceleration = _limit(
        request.acceleration,
        options.default_tcp_acceleration,
        options.max_tcp_acceleration,
        "max_tcp_acceleration",
        "TCP acceleration",
        "m/s^2",
    )
    return MotionTarget(request.kind, target, speed, acceleration)


async def check_ready(dashboard: DashboardClient) -> None:
    """Ask the controller whether motion may start: remote control, NORMAL safety, RUNNING, no program."""
    if not await dashboard.query("is in remote control"):
        raise _refuse(
            "remote_control",
            "the robot is in local control; switch the teach pendant to Remote Control",
            FailedPrecondition,
        )
    safety = await dashboard.query("safetystatus")
    if safety != "NORMAL":
        raise _refuse(
            "safety_mode",
            f"safety status is {safety}, motion needs NORMAL "
            "(inspect the cause, then unlock the protective stop)",
            FailedPrecondition,
        )
    mode = await dashboard.query("robotmode")
    if mode != "RUNNING":
        raise _refuse(
            "robot_mode", f"robot mode is {mode}; power on and release the brakes first", FailedPrecondition
        )
    if await dashboard.query("running"):
        raise _refuse(
            "program_running", "a program is running; stop it or wait for it to end", FailedPrecondition
        )


async def send_script(host: str, port: int, text: str, timeout: float) -> None:
    """Deliver a URScript program on the secondary interface, then hang up."""
    try:
        _, writer = await bounded(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        raise Unavailable(f"secondary interface {host}:{port} unreachable: {describe(exc, timeout)}") from exc
    try:
        writer.write(text.encode())
        await bounded(writer.drain(), timeout)
    finally:
        await close_writer(writer, timeout)


def _checked(row: tuple) -> tuple:
    """A monitor row whose joint positions and TCP pose are finite: NaN or inf is no robot state."""
    if not all(map(math.isfinite, row[_Q.start : _POSE.stop])):
        raise ProtocolError("monitor row holds a non-finite joint position or TCP pose")
    return row


class MotionTracker:
    """Follows monitor rows until the robot is at the target with its program stopped."""

    def __init__(self, target: MotionTarget, options: UrOptions, first_row: tuple, sent_at: float) -> None:
        self.target, self.options, self.sent_at = target, options, sent_at
        self.started = False
        self.initial = max(self.remaining(_checked(first_row)), 1e-9)

    def remaining(self, row: tuple) -> float:
        """Distance left: largest joint error (rad) or TCP position error (m)."""
        if self.target.kind is CommandKind.MOVE_JOINTS:
            return max(abs(a - b) for a, b in zip(row[_Q], self.target.target, strict=True))
        return pose_error(row[_POSE], self.target.target)[0]

    def arrived(self, row: tuple) -> bool:
        """True when the actual state is within the configured tolerance of the target."""
        if self.target.kind is CommandKind.MOVE_JOINTS:
            return self.remaining(row) <= self.options.joint_tolerance
        position, orientation = pose_error(row[_POSE], self.target.target)
        return (
            position <= self.options.position_tolerance and orientation <= self.options.orientation_tolerance
        )

    def progress(self, row: tuple) -> float:
        """Share of the distance covered, 0..1."""
        return min(1.0, max(0.0, 1.0 - self.remaining(row) / self.initial))

    def update(self, row: tuple, now: float) -> bool:
        """True when done; raise DeviceError when the motion cannot complete any more."""
        _checked(row)
        if row[_SAFETY] != SafetyMode.NORMAL:
            name = SafetyMode.NAMES.get(row[_SAFETY], str(row[_SAFETY]))
            raise DeviceError(f"motion aborted: safety mode became {name}")
        if row[_MODE] != RobotMode.RUNNING:
            raise DeviceError(
                f"motion aborted: robot mode became {RobotMode.NAMES.get(row[_MODE], row[_MODE])}"
            )
        if row[_RUNTIME] in _ACTIVE:
            self.started = True
        elif row[_RUNTIME] == RuntimeState.STOPPED:
            if self.arrived(row):
                return True
            if self.started:
                raise DeviceError(f"program stopped {self.remaining(row):.4f} from the target")
        if not self.started and now - self.sent_at > self.options.motion_start_timeout:
            raise DeviceError(
                f"the controller did not start the motion within {self.options.motion_start_timeout:g} s "
                "(script not accepted?)"
            )
        return False


async def halt_program(
    dashboard: DashboardClient, cause: BaseException, timeout: float, log: logging.Logger
) -> None:
    """Best-effort program stop after a motion ended other than at its target (no longer watched)."""
    why = "cancelled" if isinstance(cause, asyncio.CancelledError) else describe(cause, timeout)
    log.warning("motion ended before its target (%s): stopping the program", why)
    try:
        await bounded(dashboard.request("stop"), timeout)
    except Exception as exc:  # noqa: BLE001 - the motion's own error is what the caller gets
        log.warning("could not stop the program after the motion ended (%s): %s", why, exc)


async def run_program(
    dashboard: DashboardClient, program: str, progress: ProgressFn, timeout: float, poll: float
) -> CommandResult:
    """Load (when named) and play; SUCCEEDED only once the controller reports it PLAYING."""
    if program:
        progress(0.1, f"loading {program}")
        await dashboard.run(COMMANDS_BY_METHOD["load_program"], program)
    progress(0.5, "starting program")
    await dashboard.run(COMMANDS_BY_METHOD["play"])
    loaded = await wait_program_state(dashboard, "PLAYING", timeout, poll)
    progress(1.0, f"program {loaded} running")
    return CommandResult(values=[loaded], message=f"program {loaded} running")
