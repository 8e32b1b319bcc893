"""Command safety gates for motion and program commands, checked before a command is queued.

Motion and programs must be enabled for the device; the device must report, in the bus's latest
values, every `require` condition of its policy (remote/automatic mode, normal safety state); motion
targets must be inside the joint limits and workspace box, at no more than the maximum speed. Each
refusal names its rule in brackets, like the UR driver's own checks, which stay as a second line.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from linebridge.commands.policy import Condition, DevicePolicy
from linebridge.errors import FailedPrecondition, InvalidArgument
from linebridge.model import CommandKind, CommandRequest, Quality, Value
from linebridge.registry import DeviceRecord

# alias -> (value, timestamp ns, quality) of the latest sample, or None (TelemetryBus.value_of)
LatestValue = Callable[[int], tuple[Value, int, int] | None]
GATED = ("motion", "program")


class SafetyGate:
    """Checks one command of a gated class (motion, program) against its device's policy."""

    def __init__(self, latest: LatestValue) -> None:
        self._latest = latest

    def check(
        self,
        command_class: str,
        device: DeviceRecord,
        request: CommandRequest | None,
        policy: DevicePolicy,
        where: str,
    ) -> None:
        """Raise FailedPrecondition or InvalidArgument naming the rule; return when the command may go."""
        if command_class not in GATED:
            return
        enabled = policy.motion_enabled if command_class == "motion" else policy.program_enabled
        if not enabled:
            raise FailedPrecondition(
                f"{command_class} refused [{command_class}_enabled]: {command_class} commands "
                f"are disabled for {device.id!r} (set {command_class}_enabled: true in {where})"
            )
        for path, expected in policy.require.items():
            self._require(command_class, device, path, expected, where)
        if request is not None and command_class == "motion":
            check_motion(request, policy, where)

    def _require(
        self, command_class: str, device: DeviceRecord, path: str, expected: Condition, where: str
    ) -> None:
        def refuse(reason: str) -> FailedPrecondition:
            return FailedPrecondition(f"{command_class} refused [require {path}]: {reason} ({where})")

        signal = device.signals.get(path)
        if signal is None:
            raise refuse(f"device {device.id!r} has no signal {path!r} to check")
        latest = self._latest(signal.alias)
        if latest is None:
            raise refuse(f"no value of {device.id}/{path} received yet")
        value, _, quality = latest
        if quality != Quality.GOOD:
            raise refuse(f"{device.id}/{path} has quality {Quality(quality).name}")
        if not satisfies(value, expected):
            raise refuse(f"{device.id}/{path} is {value!r}, needs {_shown(expected)}")


def satisfies(value: Value, expected: Condition) -> bool:
    """Whether a reported value meets a condition; booleans never equal numbers (True is not 1 here)."""
    options = expected if isinstance(expected, list) else [expected]
    return any(isinstance(value, bool) == isinstance(option, bool) and value == option for option in options)


def _shown(expected: Condition) -> str:
    return f"one of {expected!r}" if isinstance(expected, list) else repr(expected)


def check_motion(request: CommandRequest, policy: DevicePolicy, where: str) -> None:
    """Joint limits, workspace box and maximum speed of a move; InvalidArgument naming the rule."""

    def refuse(rule: str, reason: str) -> InvalidArgument:
        return InvalidArgument(f"motion refused [{rule}]: {reason} ({where})")

    if request.kind is CommandKind.MOVE_JOINTS:
        limits = policy.joint_limits
        if limits is not None:
            if len(request.joint_positions) != len(limits):
                raise refuse(
                    "joint_limits",
                    f"{len(request.joint_positions)} joint targets for {len(limits)} configured joint limits",
                )
            for joint, (value, (low, high)) in enumerate(
                zip(request.joint_positions, limits, strict=True), 1
            ):
                if not low <= value <= high:
                    raise refuse(
                        "joint_limits",
                        f"joint {joint} target {value:.4f} rad is outside [{low:.4f}, {high:.4f}]",
                    )
        _speed(request.speed, policy.max_joint_speed, "max_joint_speed", "rad/s", refuse)
    elif request.kind is CommandKind.MOVE_LINEAR and request.pose is not None:
        box = policy.workspace
        for axis in "xyz" if box is not None else "":
            bounds = getattr(box, axis)
            value = getattr(request.pose, axis)
            if bounds is not None and not (math.isfinite(value) and bounds[0] <= value <= bounds[1]):
                raise refuse(
                    "workspace", f"{axis} = {value:.4f} m is outside [{bounds[0]:.4f}, {bounds[1]:.4f}]"
                )
        _speed(request.speed, policy.max_tcp_speed, "max_tcp_speed", "m/s", refuse)


def _speed(
    speed: float, limit: float | None, rule: str, unit: str, refuse: Callable[[str, str], InvalidArgument]
) -> None:
    # Speed 0 asks for the device's configured default; the driver keeps that within its own limit.
    if limit is not None and not (math.isfinite(speed) and speed <= limit):
        raise refuse(rule, f"speed {speed:g} {unit} exceeds the limit {limit:g} {unit}")
