"""Browse paths -> signal paths: the OPC 40010 (Robotics) table, identity/kind rules, generic fallback.

Patterns are '/'-separated browse names (namespace ignored). `*` matches one segment, `**` any number
of segments, and `{n}` inside a segment captures the digits of an instance number, so
`**/Axes/*{n}/ParameterSet/ActualPosition` matches `.../Axes/Axis_3/...` as well as `.../Axes/A3/...`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from linebridge.drivers.base import DeviceKind


@functools.cache
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regex of a browse path pattern (see the module docstring), cached per pattern."""
    parts: list[str] = []
    segments = pattern.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
            continue
        regex = re.escape(segment).replace(r"\*", "[^/]*?").replace(r"\{n\}", "(?P<n>[0-9]+)")
        parts.append(regex if last else regex + "/")
    return re.compile("".join(parts))


@dataclass(frozen=True, slots=True)
class PathRule:
    """Browse path pattern -> signal path template ({n} is the captured instance number)."""

    pattern: str
    template: str

    def apply(self, browse_path: str) -> str | None:
        """The signal path for `browse_path`, or None when the pattern does not match."""
        match = compile_pattern(self.pattern).fullmatch(browse_path)
        if match is None:
            return None
        groups = {k: str(int(v)) for k, v in match.groupdict().items()}  # "03" -> "3"
        return self.template.format(**groups)


_AXIS = "**/MotionDevices/*/Axes/*{n}/ParameterSet/"
_TRAIN = "**/MotionDevices/*/PowerTrains/*{n}/**/"
_MOTION = "**/MotionDevices/*/ParameterSet/"
_SAFETY = "**/SafetyStates/*/ParameterSet/"
_TASK = "**/Controllers/*/TaskControls/*/ParameterSet/"

# OPC 40010-1 (Robotics) variables -> Linebridge signal paths. The first matching rule wins.
PATH_RULES: tuple[PathRule, ...] = (
    PathRule(_AXIS + "ActualPosition", "axes/{n}/actual_position"),
    PathRule(_AXIS + "ActualSpeed", "axes/{n}/actual_speed"),
    PathRule(_AXIS + "ActualAcceleration", "axes/{n}/actual_acceleration"),
    PathRule(_TRAIN + "MotorTemperature", "axes/{n}/motor_temperature"),
    PathRule(_TRAIN + "BrakeReleased", "axes/{n}/brake_released"),
    PathRule(_TRAIN + "EffectiveLoadRate", "axes/{n}/effective_load_rate"),
    # The motion device is the Linebridge device: its own parameters sit at the top level.
    PathRule(_MOTION + "SpeedOverride", "speed_override"),
    PathRule(_MOTION + "OnPath", "on_path"),
    PathRule(_MOTION + "InControl", "in_control"),
    PathRule(_SAFETY + "OperationalMode", "safety/operational_mode"),
    PathRule(_SAFETY + "EmergencyStop", "safety/emergency_stop"),
    PathRule(_SAFETY + "ProtectiveStop", "safety/protective_stop"),
    PathRule(_TASK + "TaskProgramName", "program/name"),
    PathRule(_TASK + "ProgramName", "program/name"),
    PathRule(_TASK + "TaskProgramLoaded", "program/loaded"),
    PathRule(_TASK + "ProgramState", "program/state"),
    PathRule(_TASK + "ExecutionMode", "program/execution_mode"),
)


@dataclass(frozen=True, slots=True)
class IdentityRule:
    """Where a DeviceDescription identity field comes from: a property matching `pattern`."""

    field: str  # "vendor", "model" or "serial_number"
    pattern: str


# OPC 10000-100 (DI) identification properties of the motion device, then of the controller.
IDENTITY_RULES: tuple[IdentityRule, ...] = tuple(
    IdentityRule(name, f"**/{collection}/*/{browse_name}")
    for collection in ("MotionDevices", "Controllers")
    for name, browse_name in (
        ("vendor", "Manufacturer"),
        ("model", "Model"),
        ("serial_number", "SerialNumber"),
    )
)


@dataclass(frozen=True, slots=True)
class KindRule:
    """An object matching `pattern` makes the device this kind."""

    kind: DeviceKind
    pattern: str


KIND_RULES: tuple[KindRule, ...] = (
    KindRule(DeviceKind.ROBOT, "**/MotionDevices/*"),
    KindRule(DeviceKind.CONTROLLER, "**/Controllers/*"),
)

# Method browse names that stop() may call: a program stop is the closest thing to a protective stop
# request that OPC 40010 servers expose as a method.
STOP_METHOD_NAMES: tuple[str, ...] = ("StopProgram", "Stop", "StopMotion")

# Structural DI segments that carry no meaning in a signal path.
DROPPED_SEGMENTS = frozenset({"ParameterSet"})

_CAMEL_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")
_NOT_ALLOWED = re.compile(r"[^a-z0-9_.-]+")


def join_browse_path(names: Sequence[str]) -> str:
    """Browse names joined with '/' for pattern matching ('/' inside a name becomes '_')."""
    return "/".join(name.replace("/", "_") for name in names)


def snake_case(name: str) -> str:
    """ "ActualPosition" -> "actual_position", "IO" -> "io", "Axis 1" -> "axis_1"; only [a-z0-9_.-]."""
    text = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name)).lower()
    return _NOT_ALLOWED.sub("_", text).strip("_") or "_"


def generic_path(names: Sequence[str]) -> str:
    """The fallback signal path: snake_case browse names below the root, ParameterSet dropped."""
    return "/".join(snake_case(n) for n in names if n not in DROPPED_SEGMENTS)


def signal_path(names: Sequence[str]) -> str:
    """The signal path of a variable from its browse names below the browse root; never empty.

    A variable whose every browse name is a dropped segment (a bare `ParameterSet`) keeps those names,
    so no two such variables share the empty path and every path segment is non-empty.
    """
    joined = join_browse_path(names)
    for rule in PATH_RULES:
        path = rule.apply(joined)
        if path is not None and valid_signal_path(path):
            return path
    path = generic_path(names)
    if valid_signal_path(path):
        return path
    return "/".join(snake_case(n) for n in names) or "_"


def valid_signal_path(path: str) -> bool:
    """True when `path` is usable as a signal path: non-empty segments, no leading or trailing '/'."""
    return bool(path) and all(path.split("/"))


def device_kind(object_paths: Sequence[str]) -> DeviceKind:
    """ROBOT when a MotionDevice exists, CONTROLLER when only controllers do, else OTHER."""
    for rule in KIND_RULES:
        regex = compile_pattern(rule.pattern)
        if any(regex.fullmatch(p) for p in object_paths):
            return rule.kind
    return DeviceKind.OTHER
