"""Devices as Python objects: `Device`, `Signal`, `Method` dataclasses with the API's enums as `Enum`s."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from linebridge.api import pb


class ValueType(enum.IntEnum):
    """Type of a signal's values; each has its own column in a Batch."""

    UNSPECIFIED = 0
    DOUBLE = 1
    INT = 2
    BOOL = 3
    STRING = 4


class Quality(enum.IntEnum):
    """Quality of one sample."""

    UNSPECIFIED = 0
    GOOD = 1
    UNCERTAIN = 2
    BAD = 3
    STALE = 4  # the device went offline or stopped updating: the last value the bridge has


class Access(enum.IntEnum):
    """Who may do what with a signal."""

    UNSPECIFIED = 0
    READ = 1
    WRITE = 2
    READ_WRITE = 3


class DeviceKind(enum.IntEnum):
    """What a device is, as far as the line is concerned."""

    UNSPECIFIED = 0
    ROBOT = 1
    PLC = 2
    AGV = 3
    SENSOR = 4
    DRIVE = 5
    CONTROLLER = 6
    OTHER = 7


class DeviceState(enum.IntEnum):
    """Connection state of a device."""

    UNSPECIFIED = 0
    DISCOVERED = 1
    CONNECTING = 2
    ONLINE = 3
    DEGRADED = 4
    OFFLINE = 5


class DeviceEventType(enum.IntEnum):
    """What happened to a device (watch_devices)."""

    UNSPECIFIED = 0
    ADDED = 1
    CHANGED = 2
    REMOVED = 3


def enum_of(cls: type[enum.IntEnum], number: int) -> enum.IntEnum:
    """The member for a wire number; UNSPECIFIED for a number this SDK does not know yet."""
    try:
        return cls(number)
    except ValueError:
        return cls(0)


@dataclass(frozen=True, slots=True)
class Signal:
    """One signal of a device; `path` is inside the device, `full_path` is "<device>/<path>"."""

    path: str
    full_path: str
    value_type: ValueType
    unit: str = ""
    access: Access = Access.READ
    description: str = ""
    alias: int = 0
    source_type: str = ""

    @property
    def writable(self) -> bool:
        """Whether a write command may set this signal."""
        return self.access in (Access.WRITE, Access.READ_WRITE)


@dataclass(frozen=True, slots=True)
class Argument:
    """One input or output of a method."""

    name: str
    value_type: ValueType
    description: str = ""


@dataclass(frozen=True, slots=True)
class Method:
    """A method a device offers through the invoke command."""

    name: str
    inputs: tuple[Argument, ...] = ()
    outputs: tuple[Argument, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class Device:
    """A device on the line, as the bridge last described it."""

    id: str
    name: str
    kind: DeviceKind
    state: DeviceState
    state_reason: str = ""
    vendor: str = ""
    model: str = ""
    serial_number: str = ""
    driver: str = ""
    endpoint: str = ""
    source: str = ""
    identity: str = ""
    signals: dict[str, Signal] = field(default_factory=dict)
    methods: dict[str, Method] = field(default_factory=dict)
    commands: tuple[str, ...] = ()
    details: dict[str, str] = field(default_factory=dict)

    @property
    def online(self) -> bool:
        """ONLINE or DEGRADED: the device takes commands."""
        return self.state in (DeviceState.ONLINE, DeviceState.DEGRADED)


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """One event of watch_devices()."""

    type: DeviceEventType
    device: Device


def _argument(message: pb.device.MethodArgument) -> Argument:
    return Argument(message.name, enum_of(ValueType, message.value_type), message.description)  # type: ignore[arg-type]


def method_of(message: pb.device.Method) -> Method:
    """A Method from its protobuf message."""
    return Method(
        message.name,
        tuple(_argument(a) for a in message.inputs),
        tuple(_argument(a) for a in message.outputs),
        message.description,
    )


def signal_of(device_id: str, message: pb.device.Signal) -> Signal:
    """A Signal from its protobuf message."""
    return Signal(
        path=message.path,
        full_path=f"{device_id}/{message.path}",
        value_type=enum_of(ValueType, message.value_type),  # type: ignore[arg-type]
        unit=message.unit,
        access=enum_of(Access, message.access),  # type: ignore[arg-type]
        description=message.description,
        alias=message.alias,
        source_type=message.source_type,
    )


def device_of(message: pb.device.Device) -> Device:
    """A Device from its protobuf message."""
    return Device(
        id=message.id,
        name=message.name,
        kind=enum_of(DeviceKind, message.kind),  # type: ignore[arg-type]
        state=enum_of(DeviceState, message.state),  # type: ignore[arg-type]
        state_reason=message.state_reason,
        vendor=message.vendor,
        model=message.model,
        serial_number=message.serial_number,
        driver=message.driver,
        endpoint=message.endpoint,
        source=message.source,
        identity=message.identity,
        signals={s.path: signal_of(message.id, s) for s in message.signals},
        methods={m.name: method_of(m) for m in message.capabilities.methods},
        commands=tuple(message.capabilities.commands),
        details=dict(message.details),
    )
