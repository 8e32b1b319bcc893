"""The Modbus TCP driver: register-map devices (PLCs, drives, meters) behind one API."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

from linebridge.drivers.base import (
    BatchSink,
    CommandKind,
    DeviceDescription,
    DiscoveredDevice,
    Driver,
    DriverContext,
    DriverOptions,
    InvalidArgument,
    MdnsMatch,
    MdnsService,
    NotFound,
    SampleBatch,
    Signal,
    StreamHints,
    Unavailable,
    Value,
    ValueType,
    batch_of,
    config_dir,
)
from linebridge.drivers.modbus.client import UnitClient
from linebridge.drivers.modbus.pdu import ModbusException
from linebridge.drivers.modbus.planner import Limits, PollPlan, plan_blocks, plan_polls
from linebridge.drivers.modbus.points import MapPoint
from linebridge.drivers.modbus.poller import GroupPoller, Health, decode_block
from linebridge.drivers.modbus.regmap import RegisterMap, is_map_name, load_map, shipped_maps
from linebridge.drivers.modbus.transport import POOL, ModbusConnection
from linebridge.drivers.modbus.writer import execute_writes, plan_writes
from linebridge.drivers.tasks import until_first_failure

DEFAULT_PORT = 502  # IANA "mbap"
SCHEMES = ("modbus+tcp", "modbus")
SERVICE_TYPE = "_modbus._tcp.local."


class ModbusOptions(DriverOptions):
    """Options of one Modbus device (one unit id)."""

    unit: int = Field(1, ge=0, le=255, description="unit id (slave id); 255 or 0 for many TCP-only devices")
    map: RegisterMap = Field(description="shipped map name, path of a YAML map file, or the map inline")
    timeout: float = Field(1.0, gt=0, le=60, description="seconds to wait for a response")
    gap_limit: int = Field(8, ge=0, le=124, description="unmapped registers one read may span")
    bit_gap_limit: int = Field(64, ge=0, le=1999, description="unmapped coils/inputs one read may span")
    max_registers: int = Field(125, ge=1, le=125, description="registers per read the device accepts")
    max_bits: int = Field(2000, ge=1, le=2000, description="coils/inputs per read the device accepts")
    verify_writes: bool = Field(False, description="read written values back and compare")

    @field_validator("map", mode="before")
    @classmethod
    def _load_map(cls, value: Any, info: ValidationInfo) -> Any:
        # A relative map path is relative to the config file when the loader says where it is.
        if isinstance(value, str | Mapping):
            return load_map(value, config_dir(info))
        return value

    @model_validator(mode="after")
    def _fits_requests(self) -> ModbusOptions:
        for point in self.map.compiled:
            if not point.table.is_bits and point.count > self.max_registers:
                raise ValueError(
                    f"{point.label}: {point.count} registers exceed max_registers {self.max_registers}"
                )
        return self

    @property
    def limits(self) -> Limits:
        """The planner limits these options set."""
        return Limits(self.max_registers, self.max_bits, self.gap_limit, self.bit_gap_limit)


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """host and port of "modbus+tcp://host:port" (or "modbus://"); port defaults to 502."""
    parts = urlsplit(endpoint)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise InvalidArgument(f"endpoint {endpoint!r} has an invalid port") from None
    if parts.scheme not in SCHEMES or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise InvalidArgument(f"endpoint {endpoint!r} is not modbus+tcp://host[:port]")
    return parts.hostname, port


class ModbusDriver(Driver):
    """One Modbus unit reached over TCP, directly or through a gateway shared with other units."""

    type_name = "modbus"
    options_model = ModbusOptions
    identity_pinning = False  # Modbus TCP reports no identity of its own: ours is its address and unit
    discovery = (MdnsMatch(SERVICE_TYPE),)

    @classmethod
    def check_endpoint(cls, endpoint: str, options: DriverOptions) -> None:
        """InvalidArgument unless `endpoint` has this driver's form."""
        parse_endpoint(endpoint)

    def __init__(self, ctx: DriverContext) -> None:
        super().__init__(ctx)
        self.options = cast(ModbusOptions, ctx.options)
        self._map = self.options.map
        self._points = {p.path: p for p in self._map.compiled}
        self._intervals = {name: self._map.group_interval(name) for name in self._map.poll_groups}
        self.plan: PollPlan = plan_polls(self._map.compiled, self._intervals, self.options.limits)
        self._connection: ModbusConnection | None = None
        self._client: UnitClient | None = None

    @classmethod
    def from_mdns(cls, service: MdnsService) -> DiscoveredDevice:
        """A device from a `_modbus._tcp` service whose TXT names the unit (unit=) and a shipped map (map=)."""
        props = service.properties
        try:
            unit = int(props.get("unit", "1"))
        except ValueError:
            raise InvalidArgument(
                f"{service.instance}: TXT unit={props.get('unit')!r} is not a number"
            ) from None
        if not 0 <= unit <= 255:
            raise InvalidArgument(f"{service.instance}: TXT unit={unit} is outside 0..255")
        map_name = props.get("map", "")
        # Only shipped maps: a name announced on the network must never select a local file.
        if not is_map_name(map_name):
            raise InvalidArgument(
                f"{service.instance}: TXT map={map_name!r} is not a shipped map ({', '.join(shipped_maps())})"
            )
        if not 0 < service.port < 65536 or not service.host:
            raise InvalidArgument(f"{service.instance}: bad address {service.host}:{service.port}")
        host = f"[{service.host}]" if ":" in service.host else service.host
        return DiscoveredDevice(
            device_id=service.instance,
            endpoint=f"modbus+tcp://{host}:{service.port}",
            name=service.instance,
            options={"unit": unit, "map": map_name},
        )

    @classmethod
    def known_signals(cls, options: DriverOptions) -> dict[str, ValueType] | None:
        """The register map's points: analytics rules on this device are checked against them at load."""
        regmap = options.map  # type: ignore[attr-defined]
        return {p.path: p.signal().value_type for p in regmap.compiled}

    async def connect(self) -> DeviceDescription:
        """Open (or share) the connection, probe the device with one read, describe it."""
        host, port = parse_endpoint(self.ctx.endpoint)
        await self.close()
        self._connection = await POOL.acquire(host, port, self.options.timeout)
        self._client = UnitClient(self._connection, self.options.unit)
        await self._probe()
        self.ctx.logger.debug("modbus poll plan: %s", self.plan.describe())
        info = self._map.device
        writable = any(p.access.writable for p in self._map.compiled)
        return DeviceDescription(
            kind=info.device_kind,
            vendor=info.vendor,
            model=info.model,
            identity=f"modbus:{host}:{port}/{self.options.unit}",
            signals=[p.signal() for p in self._map.compiled],
            commands=frozenset({CommandKind.WRITE}) if writable else frozenset(),
            analytics=self._map.analytics_defaults(),
        )

    async def _probe(self) -> None:
        block = self.plan.groups[0].blocks[0]
        try:
            await self._require_client().read(block.table, block.start, block.count, self.options.timeout)
        except ModbusException as exc:
            if exc.from_gateway:
                raise Unavailable(str(exc)) from None
            raise

    async def close(self) -> None:
        """Release the shared connection (closing it when this was its last user)."""
        connection, self._connection, self._client = self._connection, None, None
        if connection is not None:
            await POOL.release(connection)

    def _require_client(self) -> UnitClient:
        if self._client is None:
            raise Unavailable(f"{self.device_id} is not connected")
        return self._client

    def _point(self, signal: Signal) -> MapPoint:
        point = self._points.get(signal.path)
        if point is None:
            raise NotFound(f"{self.device_id} has no signal {signal.path!r} in its register map")
        return point

    async def stream(self, signals: Sequence[Signal], sink: BatchSink, hints: StreamHints) -> None:
        """Poll each group at its own rate; publish one batch of changes per group and cycle.

        The poll rates come from the map's poll groups; hints.sampling_interval is not used.
        """
        client = self._require_client()
        self.plan = plan_polls([self._point(s) for s in signals], self._intervals, self.options.limits)
        self.ctx.logger.debug("modbus poll plan: %s", self.plan.describe())
        by_path = {s.path: s for s in signals}
        health = Health(sink, self.ctx.logger)
        pollers = [
            GroupPoller(self.device_id, group, by_path, client, self.options.timeout, hints.deadband, health)
            for group in self.plan.groups
        ]
        await until_first_failure([poller.run(sink) for poller in pollers])  # no pollers: idle

    async def read(self, signals: Sequence[Signal]) -> SampleBatch:
        """Read the signals now, with as few requests as the planner allows."""
        client = self._require_client()
        values: dict[str, Value] = {}
        for block in plan_blocks([self._point(s) for s in signals], self.options.limits):
            try:
                raw = await client.read(block.table, block.start, block.count, self.options.timeout)
            except ModbusException as exc:
                if exc.from_gateway:
                    raise Unavailable(str(exc)) from None
                raise
            values.update(zip((p.path for p in block.points), decode_block(block, raw), strict=True))
        return batch_of(self.device_id, signals, [values[s.path] for s in signals], time.time_ns())

    async def write(self, writes: Sequence[tuple[Signal, Value]]) -> None:
        """Range-check all values, then write them in order, merging neighbours (FC5/15, FC6/16, FC22)."""
        runs = plan_writes([(self._point(signal), value) for signal, value in writes])
        await execute_writes(self._require_client(), runs, self.options.timeout, self.options.verify_writes)

    def diagnostics(self) -> dict[str, str]:
        """Poll plan, request counts and connection state."""
        info = self._map.device
        lines = {
            "unit": str(self.options.unit),
            "map": f"{len(self._points)} signals; {info.vendor} {info.model}".strip(),
            "poll_plan": self.plan.describe(),
            "requests_per_cycle": (
                f"{self.plan.requests_per_cycle} "
                f"(one per signal would be {self.plan.naive_requests_per_cycle})"
            ),
        }
        connection = self._connection
        if connection is not None:
            stats = connection.stats
            lines["connection"] = (
                f"{connection.address} shared by {connection.refs} device(s); "
                f"{stats.requests} requests, {stats.timeouts} timeouts, "
                f"{stats.late_responses} late responses"
            )
        return lines
