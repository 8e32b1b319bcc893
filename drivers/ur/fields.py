"""Declarative map from RTDE output variables (and Dashboard queries) to Linebridge signals.

One row per RTDE variable; a vector variable becomes one signal per element. Adding a row adds
signals: nothing else in the driver names a variable except the motion monitor's recipe.
"""

from __future__ import annotations

from dataclasses import dataclass

from linebridge.drivers.base import ValueType
from linebridge.drivers.ur.rtde import RtdeType

_POSE_AXES = ("x", "y", "z", "rx", "ry", "rz")
_POSE_UNITS = ("m", "m", "m", "rad", "rad", "rad")
_SPEED_UNITS = ("m/s", "m/s", "m/s", "rad/s", "rad/s", "rad/s")
_WRENCH_AXES = ("fx", "fy", "fz", "tx", "ty", "tz")
_WRENCH_UNITS = ("N", "N", "N", "N.m", "N.m", "N.m")


@dataclass(frozen=True, slots=True)
class RtdeField:
    """One RTDE output variable and the signal path (and unit) of each of its elements."""

    name: str
    rtde_type: RtdeType
    value_type: ValueType
    paths: tuple[str, ...]
    units: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class RtdeAddress:
    """Signal.address of an RTDE signal: the variable and the element within it."""

    variable: str
    element: int


@dataclass(frozen=True, slots=True)
class DashboardQuery:
    """Signal.address of a signal polled from the Dashboard server."""

    command: str


def _joints(name: str, leaf: str, unit: str, description: str) -> RtdeField:
    paths = tuple(f"joints/{n}/{leaf}" for n in range(1, 7))
    return RtdeField(name, RtdeType.VECTOR6D, ValueType.DOUBLE, paths, (unit,) * 6, description)


def _vector(
    name: str, prefix: str, axes: tuple[str, ...], units: tuple[str, ...], description: str
) -> RtdeField:
    paths = tuple(f"{prefix}/{axis}" for axis in axes)
    return RtdeField(name, RtdeType.VECTOR6D, ValueType.DOUBLE, paths, units, description)


def _scalar(name: str, rtde_type: RtdeType, path: str, unit: str, description: str) -> RtdeField:
    value_type = ValueType.DOUBLE if rtde_type is RtdeType.DOUBLE else ValueType.INT
    return RtdeField(name, rtde_type, value_type, (path,), (unit,), description)


FIELDS: tuple[RtdeField, ...] = (
    _scalar("timestamp", RtdeType.DOUBLE, "controller/timestamp", "s", "time since controller start"),
    _joints("actual_q", "actual_position", "rad", "actual joint position"),
    _joints("target_q", "target_position", "rad", "target joint position"),
    _joints("actual_qd", "actual_speed", "rad/s", "actual joint speed"),
    _joints("actual_current", "actual_current", "A", "actual joint current"),
    _joints("joint_temperatures", "temperature", "degC", "joint temperature"),
    _vector(
        "actual_TCP_pose", "tcp/pose", _POSE_AXES, _POSE_UNITS, "actual TCP pose (position, rotation vector)"
    ),
    _vector("actual_TCP_speed", "tcp/speed", _POSE_AXES, _SPEED_UNITS, "actual TCP speed"),
    _vector("actual_TCP_force", "tcp/force", _WRENCH_AXES, _WRENCH_UNITS, "generalized force at the TCP"),
    _scalar("robot_mode", RtdeType.INT32, "robot/mode", "", "robot mode (7 = RUNNING)"),
    _scalar(
        "safety_mode", RtdeType.INT32, "safety/mode", "", "safety mode (1 = NORMAL, 3 = PROTECTIVE_STOP)"
    ),
    _scalar(
        "runtime_state",
        RtdeType.UINT32,
        "program/runtime_state",
        "",
        "program state (1 STOPPED, 2 PLAYING, 4 PAUSED)",
    ),
    _scalar(
        "speed_scaling", RtdeType.DOUBLE, "robot/speed_scaling", "", "speed scaling of the trajectory limiter"
    ),
    _scalar("actual_digital_input_bits", RtdeType.UINT64, "io/digital_inputs", "", "digital inputs bit mask"),
    _scalar(
        "actual_digital_output_bits", RtdeType.UINT64, "io/digital_outputs", "", "digital outputs bit mask"
    ),
    _scalar(
        "standard_analog_input0",
        RtdeType.DOUBLE,
        "io/analog_inputs/0",
        "",
        "standard analog input 0 (A or V)",
    ),
    _scalar(
        "standard_analog_input1",
        RtdeType.DOUBLE,
        "io/analog_inputs/1",
        "",
        "standard analog input 1 (A or V)",
    ),
    _scalar(
        "standard_analog_output0",
        RtdeType.DOUBLE,
        "io/analog_outputs/0",
        "",
        "standard analog output 0 (A or V)",
    ),
    _scalar(
        "standard_analog_output1",
        RtdeType.DOUBLE,
        "io/analog_outputs/1",
        "",
        "standard analog output 1 (A or V)",
    ),
)

FIELDS_BY_NAME: dict[str, RtdeField] = {f.name: f for f in FIELDS}


@dataclass(frozen=True, slots=True)
class DashboardSignal:
    """A signal polled from the Dashboard server (state that RTDE does not carry)."""

    path: str
    command: str
    value_type: ValueType
    description: str


DASHBOARD_SIGNALS: tuple[DashboardSignal, ...] = (
    DashboardSignal(
        "status/remote_control",
        "is in remote control",
        ValueType.BOOL,
        "robot is in remote control (commands over the network allowed)",
    ),
    DashboardSignal("program/loaded", "get loaded program", ValueType.STRING, "path of the loaded program"),
    DashboardSignal(
        "program/state", "programState", ValueType.STRING, "program state (STOPPED, PLAYING, PAUSED)"
    ),
)
