"""The contract every driver implements, and the types it may use.

A driver translates one vendor protocol for one device. It never reconnects, retries or keeps
device state itself: it raises, and the bridge's session supervisor decides what happens next.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

import yaml
from pydantic import ConfigDict, ValidationInfo

from linebridge.configbase import StrictModel, relative_to_config  # re-exported for drivers
from linebridge.errors import (  # re-exported for drivers
    DeviceError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    Unsupported,
)
from linebridge.model import (  # re-exported for drivers
    Access,
    AlarmReport,
    CommandKind,
    CommandRequest,
    CommandResult,
    DeviceDescription,
    DeviceKind,
    MethodArg,
    MethodSpec,
    Pose,
    ProgressFn,
    Quality,
    SampleBatch,
    Signal,
    Value,
    ValueType,
    batch_of,
)

__all__ = [
    "Access",
    "AlarmReport",
    "analytics_file",
    "BatchSink",
    "CommandKind",
    "CommandRequest",
    "CommandResult",
    "DeviceDescription",
    "DeviceError",
    "DeviceHost",
    "DeviceKind",
    "DiscoveredDevice",
    "Driver",
    "DriverContext",
    "DriverOptions",
    "FailedPrecondition",
    "InvalidArgument",
    "MdnsMatch",
    "MdnsService",
    "MethodArg",
    "MethodSpec",
    "NotFound",
    "Pose",
    "ProgressFn",
    "Quality",
    "SampleBatch",
    "Signal",
    "StreamHints",
    "Unavailable",
    "Unsupported",
    "Value",
    "ValueType",
    "batch_of",
    "config_dir",
    "relative_to_config",
]


class DriverOptions(StrictModel):
    """Base of every driver's options model: unknown keys are errors, so typos are caught."""

    model_config = ConfigDict(frozen=True)


def config_dir(info: ValidationInfo) -> Path | None:
    """The config file's folder the loader passed to an options validator (None: no config file)."""
    base = info.context.get("config_dir") if isinstance(info.context, Mapping) else None
    return Path(base) if base else None


@dataclass(frozen=True, slots=True)
class MdnsMatch:
    """A zeroconf service type a driver handles, e.g. "_opcua-tcp._tcp.local."."""

    service_type: str


@dataclass(frozen=True, slots=True)
class MdnsService:
    """A resolved mDNS service, TXT values already decoded to text (undecodable keys dropped)."""

    service_type: str
    instance: str  # instance name without the service type, e.g. "robot-1"
    host: str  # an address to connect to
    port: int
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DiscoveredDevice:
    """What a driver makes of an mDNS service: a device id, an endpoint and driver options."""

    device_id: str
    endpoint: str
    name: str = ""
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamHints:
    """How the device should deliver data, from the device's config."""

    # Seconds between samples the device should take (OPC UA sampling interval, poll period).
    sampling_interval: float = 0.01
    # Absolute deadband the device may apply itself; 0 delivers every change.
    deadband: float = 0.0


class BatchSink(Protocol):
    """Where a streaming driver delivers its data. Both calls are cheap and never block."""

    def publish(self, batch: SampleBatch) -> None:
        """Hand a batch to the bridge."""

    def degraded(self, reason: str | None) -> None:
        """Report that data is partial or bad (reason), or that it is fine again (None)."""

    def alive(self) -> None:
        """Report that the device answered with nothing new (a keep-alive, a poll without changes)."""

    def alarm(self, report: AlarmReport) -> None:
        """Report the state of an alarm the device raises itself (OPC UA A&C, alarm words)."""


class DeviceHost(Protocol):
    """Where a gateway driver registers the devices behind its one connection (e.g. AGVs on a fleet broker).

    The driver's own device stays the connection; each device behind it gets a record, aliases and
    a state of its own, and its commands go to the `handler` it was attached with.
    """

    def attach(self, device_id: str, description: DeviceDescription, handler: Driver) -> bool:
        """The device is online (again) or re-described: register it, give its signals aliases.

        Returns False (and logs once) when the id belongs to another device.
        """

    def detach(self, device_id: str, reason: str) -> None:
        """The device went offline (its record, aliases and last values stay)."""

    def publish(self, batch: SampleBatch) -> None:
        """Hand a batch of an attached device to the bridge."""


@dataclass(frozen=True, slots=True)
class DriverContext:
    """What a driver instance is given: which device, where, and its validated options."""

    device_id: str
    endpoint: str
    options: DriverOptions
    logger: logging.Logger
    # Set for every driver; only gateway drivers (one connection, many devices) use it.
    host: DeviceHost | None = None


class Driver(ABC):
    """One device connection speaking one vendor protocol.

    Lifecycle: connect() -> stream() until it raises or is cancelled -> close(). read(), write()
    and execute() may be called while stream() runs. close() is idempotent.
    """

    type_name: ClassVar[str]
    options_model: ClassVar[type[DriverOptions]] = DriverOptions
    discovery: ClassVar[tuple[MdnsMatch, ...]] = ()
    # Whether DeviceDescription.identity is the device's own (ApplicationUri, serial number), so that a
    # device found over mDNS can be pinned to it; False when it only restates the address.
    identity_pinning: ClassVar[bool] = True

    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx

    @property
    def device_id(self) -> str:
        """The id of the device this driver serves."""
        return self.ctx.device_id

    @classmethod
    def from_mdns(cls, service: MdnsService) -> DiscoveredDevice:
        """Turn an advertised service into a device; raise InvalidArgument for junk TXT values."""
        raise InvalidArgument(f"driver {cls.type_name} does not take mDNS services")

    @classmethod
    def check_endpoint(cls, endpoint: str, options: DriverOptions) -> None:
        """Raise InvalidArgument when `endpoint` is not an address this driver can use (before connecting)."""
        return None  # drivers without a fixed endpoint form take any

    @classmethod
    def known_signals(cls, options: DriverOptions) -> dict[str, ValueType] | None:
        """Signal paths and types known before connecting (a register map), for the config check; else None."""
        return None

    @abstractmethod
    async def connect(self) -> DeviceDescription:
        """Open the connection and describe the device (identity, signals, capabilities)."""

    @abstractmethod
    async def close(self) -> None:
        """Close the connection; safe to call more than once and after a failed connect."""

    @abstractmethod
    async def stream(self, signals: Sequence[Signal], sink: BatchSink, hints: StreamHints) -> None:
        """Deliver `signals` (aliases assigned) to `sink` until cancelled; raise when the link breaks."""

    @abstractmethod
    async def read(self, signals: Sequence[Signal]) -> SampleBatch:
        """Read the current values of `signals` from the device."""

    def check(self, request: CommandRequest) -> None:
        """Refuse a command before it is queued (raise InvalidArgument); the default accepts it."""
        return None

    def liveness(self, hints: StreamHints) -> float | None:
        """Seconds without a batch or `sink.alive()` after which the device counts as hung (None: no bound).

        The session enforces it while stream() runs; `liveness_seconds` in a device's config overrides it.
        """
        return None

    def diagnostics(self) -> dict[str, str]:
        """Human-readable internals worth showing an integrator (poll plan, negotiated versions)."""
        return {}

    async def write(self, writes: Sequence[tuple[Signal, Value]]) -> None:
        """Set signals to values (already type-checked against each signal)."""
        raise Unsupported(f"{self.type_name} driver does not support writes")

    async def call(self, method: MethodSpec, args: Sequence[Value], progress: ProgressFn) -> list[Value]:
        """Call a device method with type-checked arguments; return its outputs."""
        raise Unsupported(f"{self.type_name} driver does not support methods")

    async def acknowledge_alarm(self, name: str, comment: str) -> None:
        """Acknowledge an alarm the device reported (forwarded to the device, e.g. OPC UA Acknowledge)."""
        raise Unsupported(f"{self.type_name} driver does not acknowledge alarms")

    async def confirm_alarm(self, name: str, comment: str) -> None:
        """Confirm an acknowledged alarm the device reported (forwarded, e.g. OPC UA Confirm)."""
        raise Unsupported(f"{self.type_name} driver does not confirm alarms")

    async def stop(self) -> None:
        """Request a protective stop of the device's motion or program."""
        raise Unsupported(f"{self.type_name} driver does not support stop")

    async def execute(self, request: CommandRequest, progress: ProgressFn) -> CommandResult:
        """Run one command; drivers with extra command kinds extend this."""
        if request.kind is CommandKind.WRITE:
            await self.write(request.writes)
            return CommandResult(message=f"wrote {len(request.writes)} signal(s)")
        if request.kind is CommandKind.INVOKE:
            assert request.method is not None
            return CommandResult(values=await self.call(request.method, request.args, progress))
        if request.kind is CommandKind.STOP:
            await self.stop()
            return CommandResult(message="stop requested")
        raise Unsupported(f"{self.type_name} driver does not support {request.kind} commands")


@functools.cache
def analytics_file(path: str) -> dict[str, object]:
    """A driver's default machine states and alarm rules (YAML in the `analytics.devices` schema)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def all_signals(description: DeviceDescription) -> Sequence[Signal]:
    """The readable signals of a device, the default set to stream."""
    return [s for s in description.signals if s.access.readable]
