"""`AsyncClient`: the asyncio client of a Linebridge bridge."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from linebridge.api import pb
from linebridge.client import errors
from linebridge.client._channel import Backoff, Pem, call, open_channel, tls_credentials
from linebridge.client._values import duration, value_of
from linebridge.client.alarms import AlarmCalls
from linebridge.client.batch import Batch, Sample
from linebridge.client.commands import Command, CommandEvent, Jog, build_request, event_of
from linebridge.client.devices import Device, DeviceEvent, DeviceEventType, ValueType, device_of, enum_of
from linebridge.client.subscription import Notice, Subscription

T = TypeVar("T")
Value = float | int | bool | str


@dataclass(frozen=True, slots=True)
class BridgeInfo:
    """What GetInfo says about the bridge."""

    bridge_id: str
    version: str
    uptime_seconds: float
    devices: int
    devices_online: int
    subscribers: int
    samples_in: int
    samples_out: int
    samples_dropped: int
    drivers: tuple[str, ...]
    warnings: tuple[str, ...]
    # Head of the signed audit chain (0 and "" when the audit log is off): record it elsewhere and
    # `linebridge audit verify --head-hash` finds a cut tail.
    audit_seq: int = 0
    audit_hash: str = ""
    # Who the bridge takes this client to be, and its role: "VIEWER", "OPERATOR" or "ADMIN".
    caller: str = ""
    role: str = ""


class Stubs:
    """The generated gRPC stubs of every service over one channel (for protobuf-level access)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.devices = pb.device_grpc.DeviceServiceStub(channel)
        self.telemetry = pb.telemetry_grpc.TelemetryServiceStub(channel)
        self.commands = pb.command_grpc.CommandServiceStub(channel)
        self.bridge = pb.bridge_grpc.BridgeServiceStub(channel)
        self.transport = pb.transport_grpc.TransportServiceStub(channel)
        self.alarms = pb.alarm_grpc.AlarmServiceStub(channel)
        self.efficiency = pb.alarm_grpc.EfficiencyServiceStub(channel)


class AsyncClient(AlarmCalls):
    """A bridge at `target` ("host:port"). TLS when `ca`, `cert`/`key` or `tls=True` is given (PEM bytes,
    PEM text or file paths); `token` is sent as a bearer token. Calls made while the bridge cannot be
    reached are retried with backoff for `reconnect_seconds`; subscriptions reconnect on their own."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        ca: Pem = None,
        cert: Pem = None,
        key: Pem = None,
        token: str | None = None,
        tls: bool = False,
        reconnect_seconds: float = 30.0,
        call_timeout: float | None = 30.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.target = target
        credentials = tls_credentials(ca, cert, key) if (tls or ca or cert or key) else None
        self.channel = open_channel(target, credentials, token)
        self.stubs = Stubs(self.channel)
        self.reconnect_seconds, self.call_timeout = reconnect_seconds, call_timeout
        self.backoff = backoff or Backoff()
        self._subscriptions: set[Subscription] = set()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """End every subscription and close the channel."""
        for subscription in list(self._subscriptions):
            subscription.close()
        await self.channel.close()

    async def _unary(
        self, method: Callable[..., Awaitable[T]], request: Any, timeout: float | None = None
    ) -> T:
        deadline = timeout or self.call_timeout
        return await call(lambda: method(request, timeout=deadline), self.reconnect_seconds, self.backoff)

    # -- the bridge and its devices -----------------------------------------------------------------
    async def locate_load(self, load_id: str) -> pb.transport.LocateLoadResponse:
        """Where a load is: the AGV with it (or that dropped it), position, map, zones, last seen."""
        return await self._unary(
            self.stubs.transport.LocateLoad, pb.transport.LocateLoadRequest(load_id=load_id)
        )

    async def transporters(self) -> list[pb.transport.Transporter]:
        """Every AGV: state, position, loads, battery, order progress, errors."""
        request = pb.transport.ListTransportersRequest()
        return list((await self._unary(self.stubs.transport.ListTransporters, request)).transporters)

    async def zones(self, map_id: str = "") -> list[pb.transport.Zone]:
        """The configured zones with their polygons, of one map or of all (sorted by map, then name)."""
        request = pb.transport.ListZonesRequest(map_id=map_id)
        return list((await self._unary(self.stubs.transport.ListZones, request)).zones)

    async def info(self) -> BridgeInfo:
        """Version, uptime, counters and warnings of the bridge."""
        m = await self._unary(self.stubs.bridge.GetInfo, pb.bridge.GetInfoRequest())
        uptime = m.uptime.seconds + m.uptime.nanos / 1e9
        counts = (m.devices, m.devices_online, m.subscribers, m.samples_in, m.samples_out, m.samples_dropped)
        return BridgeInfo(
            m.bridge_id,
            m.version,
            uptime,
            *counts,
            tuple(m.drivers),
            tuple(m.warnings),
            m.audit_head.sequence,
            m.audit_head.hash,
            m.caller.name,
            pb.bridge.CallerRole.Name(m.caller.role).removeprefix("CALLER_ROLE_") if m.caller.role else "",
        )

    async def uplink_status(self) -> pb.bridge.GetUplinkStatusResponse:
        """State of the Industrial Cloud uplink (the protobuf message; see bridge.proto)."""
        return await self._unary(self.stubs.bridge.GetUplinkStatus, pb.bridge.GetUplinkStatusRequest())

    async def approve(self, device_id: str) -> Device:
        """Let a device found through mDNS connect (admin role)."""
        request = pb.bridge.ApproveDeviceRequest(device_id=device_id)
        return device_of((await self._unary(self.stubs.bridge.ApproveDevice, request)).device)

    async def devices(self, glob: str = "", signals: bool = True) -> list[Device]:
        """Devices whose id matches `glob` (all when empty); `signals=False` leaves signal lists out."""
        request = pb.device.ListDevicesRequest(id_glob=glob, omit_signals=not signals)
        return [device_of(d) for d in (await self._unary(self.stubs.devices.ListDevices, request)).devices]

    async def device(self, device_id: str) -> Device:
        """One device; DeviceNotFound when the bridge knows none of that id."""
        request = pb.device.GetDeviceRequest(id=device_id)
        return device_of((await self._unary(self.stubs.devices.GetDevice, request)).device)

    async def watch_devices(self, include_existing: bool = True) -> AsyncIterator[DeviceEvent]:
        """Device events as they happen. Reconnects for `reconnect_seconds` after a loss (and then reports
        every device as ADDED again when `include_existing`)."""
        request = pb.device.WatchDevicesRequest(include_existing=include_existing)
        next_delay, lost_at = self.backoff.delays(), None
        while True:
            stream = self.stubs.devices.WatchDevices(request)
            try:
                async for event in stream:
                    next_delay, lost_at = self.backoff.delays(), None
                    yield DeviceEvent(enum_of(DeviceEventType, event.type), device_of(event.device))  # type: ignore[arg-type]
                return
            except grpc.RpcError as exc:
                error = errors.from_rpc_error(exc)
                lost_at = lost_at or time.monotonic()
                if not isinstance(error, errors.BridgeUnavailable | errors.Cancelled) or (
                    time.monotonic() - lost_at > self.reconnect_seconds
                ):
                    raise error from None
            finally:
                stream.cancel()
            await asyncio.sleep(next_delay())

    # -- telemetry ------------------------------------------------------------------------------------
    def subscribe(
        self,
        paths: Sequence[str],
        *,
        on_change: bool = False,
        deadband: float = 0.0,
        interval: float | None = None,
        latency: float | None = None,
        on_notice: Callable[[Notice], Any] | None = None,
        history_seconds: float = 60.0,
    ) -> Subscription:
        """Batches of the signals matching `paths`: every sample, only changes (`on_change`, beyond
        `deadband`), or the latest value every `interval` s; `latency` caps the bridge's batching window."""
        request = pb.telemetry.SubscribeRequest(paths=list(paths))
        if interval:
            request.trigger = pb.telemetry.TRIGGER_SAMPLE
            request.sample_interval.CopyFrom(duration(interval))
        elif on_change:
            request.trigger, request.deadband = pb.telemetry.TRIGGER_ON_CHANGE, deadband
        if latency:
            request.max_batch_latency.CopyFrom(duration(latency))
        return Subscription(self, request, on_notice, history_seconds)

    async def read(self, paths: Sequence[str], *, from_device: bool = False) -> Batch:
        """Current values of the signals matching `paths` (the bridge's latest, or asked from the device).

        Every matching signal is in the batch's catalog (with its unit); one without a value yet has
        no sample."""
        values = await self.read_values(paths, from_device=from_device)
        types = {v.path: enum_of(ValueType, v.value_type) for v in values}
        samples = [
            Sample(v.path, value_of(v.value), v.timestamp_ns, v.quality)
            for v in values
            if v.value.WhichOneof("kind") is not None
        ]
        units = {v.path: v.unit for v in values}
        return Batch.from_samples(samples, types, units)  # type: ignore[arg-type]

    async def read_values(
        self, paths: Sequence[str], *, from_device: bool = False
    ) -> list[pb.telemetry.SignalValue]:
        """Every SignalValue (value, timestamp, quality, age) a Read returns, following its pages."""
        values: list[pb.telemetry.SignalValue] = []
        token = ""
        while True:
            request = pb.telemetry.ReadRequest(paths=list(paths), from_device=from_device, page_token=token)
            response = await self._unary(self.stubs.telemetry.Read, request)
            values.extend(response.values)
            token = response.next_page_token
            if not token:
                return values

    def history(self, paths: Sequence[str] | None = None, seconds: float = 60.0) -> Batch:
        """What this client's running subscriptions received in the last `seconds`, as one Batch."""
        return Batch.concat([s.history(paths, seconds) for s in self._subscriptions])

    # -- commands -------------------------------------------------------------------------------------
    async def execute(
        self,
        device: str,
        *,
        write: Mapping[str, Value] | None = None,
        invoke: str | None = None,
        args: Sequence[Value] = (),
        stop: bool = False,
        move_joints: Sequence[float] | None = None,
        run_program: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> Command:
        """Send one command (exactly one action) and return its handle once the bridge accepted it.

        A refusal raises at once (CommandRefused, PermissionDenied, DeviceUnavailable, ...). Without an
        idempotency key one is made, so a retry after a lost connection never runs the command twice."""
        request = build_request(
            device,
            write=write,
            invoke=invoke,
            args=args,
            stop=stop,
            move_joints=move_joints,
            run_program=run_program,
            idempotency_key=idempotency_key or uuid.uuid4().hex,
            timeout=timeout,
        )

        async def start() -> tuple[Any, Any]:
            stream = self.stubs.commands.Execute(request)
            try:
                return stream, await stream.read()
            except BaseException:
                stream.cancel()
                raise

        stream, first = await call(start, self.reconnect_seconds, self.backoff)
        if first is grpc.aio.EOF:
            raise errors.ClientError(f"the bridge ended the Execute stream of {device} without an event")
        return Command(self, request, stream, event_of(first))

    async def command(self, command_id: str) -> CommandEvent:
        """The state of a command (CommandNotFound when the bridge does not know it)."""
        request = pb.command.GetCommandRequest(command_id=command_id)
        return event_of((await self._unary(self.stubs.commands.GetCommand, request)).command)

    async def commands(self, device: str = "", limit: int = 100) -> list[CommandEvent]:
        """Recent commands, newest first (of one device when given)."""
        request = pb.command.ListCommandsRequest(device_id=device, limit=limit)
        return [event_of(c) for c in (await self._unary(self.stubs.commands.ListCommands, request)).commands]

    def jog(self, device: str, deadman_interval: float = 0.5) -> Jog:
        """`async with client.jog("robot-1") as jog: await jog.move_joints([...])`: continuous motion under a
        deadman; a heartbeat keeps it armed while the block runs, and the device stops when it ends."""
        return Jog(self, device, deadman_interval)
