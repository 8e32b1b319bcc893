"""Internal types shared by the core and the drivers: signals, devices, sample batches, commands."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from linebridge.errors import InvalidArgument

Value = float | int | bool | str


class ValueType(IntEnum):
    """Column a signal's values travel in; numbers match linebridge.v1.ValueType."""

    DOUBLE = 1
    INT = 2
    BOOL = 3
    STRING = 4


class Quality(IntEnum):
    """Sample quality; numbers match linebridge.v1.Quality."""

    GOOD = 1
    UNCERTAIN = 2
    BAD = 3
    # The bridge's last value of a device that went offline or stopped updating it in time.
    STALE = 4


class Access(IntEnum):
    """Who may do what with a signal; numbers match linebridge.v1.Access."""

    READ = 1
    WRITE = 2
    READ_WRITE = 3

    @property
    def writable(self) -> bool:
        """Whether the signal may be written."""
        return self in (Access.WRITE, Access.READ_WRITE)

    @property
    def readable(self) -> bool:
        """Whether the signal may be read."""
        return self in (Access.READ, Access.READ_WRITE)


class DeviceKind(IntEnum):
    """What a device is; numbers match linebridge.v1.DeviceKind."""

    ROBOT = 1
    PLC = 2
    AGV = 3
    SENSOR = 4
    DRIVE = 5
    CONTROLLER = 6
    OTHER = 7


class DeviceState(IntEnum):
    """Connection state owned by the session supervisor; numbers match linebridge.v1.DeviceState."""

    DISCOVERED = 1
    CONNECTING = 2
    ONLINE = 3
    DEGRADED = 4
    OFFLINE = 5


class Role(IntEnum):
    """What a caller may do; a higher role includes the lower ones."""

    VIEWER = 1  # list, read, subscribe
    OPERATOR = 2  # commands
    ADMIN = 3  # bridge control, discovery approval


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is asking: a certificate subject, a token's name, or a cloud service (Sparkplug host)."""

    name: str
    role: Role
    peer: str = ""  # network address, or the Sparkplug topic for cloud commands
    via: str = "grpc"  # "grpc", "sparkplug", "local"


LOCAL_ADMIN = Identity("local", Role.ADMIN, via="local")


class CommandKind(StrEnum):
    """Command classes a device can declare in its capabilities."""

    WRITE = "write"
    INVOKE = "invoke"
    STOP = "stop"
    MOVE_JOINTS = "move_joints"
    MOVE_LINEAR = "move_linear"
    RUN_PROGRAM = "run_program"
    PAUSE_PROGRAM = "pause_program"

    @property
    def command_class(self) -> str:
        """Safety class used by policies: write, invoke, motion, program or stop."""
        if self in (CommandKind.MOVE_JOINTS, CommandKind.MOVE_LINEAR):
            return "motion"
        if self in (CommandKind.RUN_PROGRAM, CommandKind.PAUSE_PROGRAM):
            return "program"
        return self.value


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def coerce(value: Any, value_type: ValueType) -> Value:
    """Return `value` as the Python type of `value_type`, or raise InvalidArgument.

    Lossless only: 1.5 is not an INT, "yes" is not a BOOL, NaN is a DOUBLE.
    """
    if value_type is ValueType.DOUBLE:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgument(f"expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if value_type is ValueType.INT:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"expected an integer, got {type(value).__name__} {value!r}")
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise InvalidArgument(f"integer {value} does not fit in 64 bits")
        return value
    if value_type is ValueType.BOOL:
        if not isinstance(value, bool):
            raise InvalidArgument(f"expected a boolean, got {type(value).__name__} {value!r}")
        return value
    if not isinstance(value, str):
        raise InvalidArgument(f"expected a string, got {type(value).__name__} {value!r}")
    return value


def parse_value_text(text: str, value_type: ValueType) -> Value:
    """Parse a value typed on a command line ("1.5", "true", "42") as `value_type`."""
    if value_type is ValueType.STRING:
        return text
    if value_type is ValueType.BOOL:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "on", "yes"):
            return True
        if lowered in ("false", "0", "off", "no"):
            return False
        raise InvalidArgument(f"expected true/false, got {text!r}")
    try:
        number = float(text) if value_type is ValueType.DOUBLE else int(text, 0)
    except ValueError:
        kind = "a number" if value_type is ValueType.DOUBLE else "an integer"
        raise InvalidArgument(f"expected {kind}, got {text!r}") from None
    if isinstance(number, float) and math.isinf(number):
        raise InvalidArgument(f"value {text!r} is out of range")
    return number


@dataclass(slots=True)
class Signal:
    """One data point of a device. `address` is the driver's own key (node id, register, field)."""

    path: str
    value_type: ValueType
    unit: str = ""
    access: Access = Access.READ
    description: str = ""
    source_type: str = ""
    address: Any = None
    # "subscription" when the device pushes changes, "polled-compare" when the driver polls.
    change_detection: str = "subscription"
    # Declared range (Modbus map min/max, OPC UA EURange): a value outside it is UNCERTAIN.
    minimum: float | None = None
    maximum: float | None = None
    # Assigned by the registry when the device is registered; stable across reconnects.
    alias: int = 0


@dataclass(frozen=True, slots=True)
class MethodArg:
    """One input or output argument of a device method."""

    name: str
    value_type: ValueType
    description: str = ""


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """A method a device offers through the invoke command."""

    name: str
    inputs: tuple[MethodArg, ...] = ()
    outputs: tuple[MethodArg, ...] = ()
    description: str = ""
    address: Any = None
    # Runs at once, beside the device's queue, instead of waiting for the command before it (e.g. a
    # VDA 5050 instant action while an order runs); never preempts anything.
    immediate: bool = False


@dataclass(slots=True)
class DeviceDescription:
    """What a driver learned about its device on connect."""

    kind: DeviceKind
    vendor: str = ""
    model: str = ""
    serial_number: str = ""
    # The device's own identity (OPC UA ApplicationUri, serial number); used to deduplicate.
    identity: str = ""
    name: str = ""
    signals: list[Signal] = field(default_factory=list)
    methods: list[MethodSpec] = field(default_factory=list)
    commands: frozenset[CommandKind] = frozenset()
    # The driver's proposal for machine states and alarm rules (the `analytics.devices` schema).
    analytics: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, weakref_slot=True)  # weakly referenced by the API layer's encoding cache
class SampleBatch:
    """Samples of one device in columnar form: parallel lists, no object per sample.

    `values[i]` belongs to `aliases[i]` at `timestamps[i]` (ns since the epoch). `qualities` is
    None when every sample is GOOD. `value_type` is set when every value has that type, which
    lets encoders copy the whole column at once. A published batch is never changed again: drivers
    may hand the same `aliases` list to batch after batch (encoders cache by it), but not mutate it.
    """

    device_id: str
    aliases: list[int]
    values: list[Value]
    timestamps: list[int]
    qualities: list[int] | None = None
    value_type: ValueType | None = None
    # time.monotonic() when the bus took the batch (for staleness).
    received: float = field(default=0.0, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.aliases)

    def split(self, size: int) -> tuple[SampleBatch, SampleBatch]:
        """The first `size` samples and the rest, as two new batches (this one is left as it was)."""
        qualities = self.qualities

        def part(cut: slice) -> SampleBatch:
            return SampleBatch(
                self.device_id,
                self.aliases[cut],
                self.values[cut],
                self.timestamps[cut],
                None if qualities is None else qualities[cut],
                self.value_type,
            )

        return part(slice(None, size)), part(slice(size, None))


@dataclass(frozen=True, slots=True)
class AlarmReport:
    """An alarm the device itself reports (an OPC UA condition, an alarm word): its current state."""

    name: str
    active: bool
    acked: bool
    severity: int = 500
    message: str = ""
    source: str = ""  # the device's own name for the source (SourceName)
    retain: bool = True
    confirmed: bool = True  # OPC UA ConfirmedState (true when the device has none)


@dataclass(frozen=True, slots=True)
class Pose:
    """Tool centre point pose: position in m, rotation vector in rad."""

    x: float
    y: float
    z: float
    rx: float
    ry: float
    rz: float


@dataclass(slots=True)
class CommandRequest:
    """A validated command as a driver sees it: signals and methods already resolved.

    Motion units are SI: joint positions in rad, speeds in rad/s or m/s.
    """

    kind: CommandKind
    writes: list[tuple[Signal, Value]] = field(default_factory=list)
    method: MethodSpec | None = None
    args: list[Value] = field(default_factory=list)
    joint_positions: list[float] = field(default_factory=list)
    pose: Pose | None = None
    speed: float = 0.0
    acceleration: float = 0.0
    program: str = ""


@dataclass(slots=True)
class CommandResult:
    """What a finished command returns."""

    values: list[Value] = field(default_factory=list)
    message: str = ""


ProgressFn = Callable[[float, str], None]


def batch_of(
    device_id: str,
    signals: Sequence[Signal],
    values: Sequence[Value],
    timestamp_ns: int,
    quality: Quality = Quality.GOOD,
) -> SampleBatch:
    """Build a batch of one value per signal, all taken at the same time (a poll cycle)."""
    count = len(signals)
    types = {s.value_type for s in signals}
    return SampleBatch(
        device_id=device_id,
        aliases=[s.alias for s in signals],
        values=list(values),
        timestamps=[timestamp_ns] * count,
        qualities=None if quality is Quality.GOOD else [int(quality)] * count,
        value_type=types.pop() if len(types) == 1 else None,
    )
