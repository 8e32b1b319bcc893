"""The four Linebridge gRPC services: convert the request, call the core, convert the answer."""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc

from linebridge import __version__
from linebridge.api import pb
from linebridge.api.auth import current_identity
from linebridge.api.convert import (
    PAGE_PREFIX,
    batch_update_chunks,
    command_to_pb,
    device_to_pb,
    duration,
    event_to_pb,
    page_start,
    read_entry,
    seconds,
    spec_from_pb,
    subscription_options,
    update_to_pb,
)
from linebridge.api.errors import grpc_errors
from linebridge.commands.jog import JogSession
from linebridge.commands.types import CommandEvent
from linebridge.errors import InvalidArgument
from linebridge.model import LOCAL_ADMIN
from linebridge.registry import DeviceEvent, DeviceRecord, DeviceRegistry
from linebridge.telemetry.updates import BatchUpdate

if TYPE_CHECKING:
    from linebridge.analytics import AlarmManager, AnalyticsEngine
    from linebridge.audit.key import ChainHead
    from linebridge.commands.manager import CommandManager
    from linebridge.devices.manager import DeviceManager
    from linebridge.telemetry.bus import TelemetryBus
    from linebridge.transport.index import TransportIndex
    from linebridge.uplink.status import UplinkStatus

DEFAULT_READ_SECONDS = 10.0  # a Read from the device without a gRPC deadline waits at most this long
_EVENT = {DeviceEvent.ADDED: 1, DeviceEvent.CHANGED: 2, DeviceEvent.REMOVED: 3}


@dataclass
class ApiParts:
    """The core parts the servicers call: no servicer sees the whole bridge."""

    registry: DeviceRegistry
    bus: TelemetryBus
    commands: CommandManager
    devices: DeviceManager
    uplink_status: Callable[[], UplinkStatus]
    bridge_id: str
    drivers: list[str]
    warnings: list[str] = field(default_factory=list)
    started_ns: int = field(default_factory=time.time_ns)
    started_monotonic: float = field(default_factory=time.monotonic)
    # The audit chain's newest record (None when the audit log is off).
    audit_head: Callable[[], ChainHead] | None = None
    transport: TransportIndex | None = None  # goods transport (TransportService)
    alarms: AlarmManager | None = None  # issue 14: AlarmService
    analytics: AnalyticsEngine | None = None  # issue 14: EfficiencyService


def peer_of(context: grpc.aio.ServicerContext) -> str:
    """The caller's address as gRPC reports it."""
    return context.peer() or "unknown"


class DeviceService(pb.device_grpc.DeviceServiceServicer):
    """ListDevices, GetDevice, WatchDevices."""

    def __init__(self, registry: DeviceRegistry) -> None:
        self.registry = registry

    @grpc_errors
    async def ListDevices(self, request, context):  # noqa: N802
        """The devices whose id matches the glob, sorted by id."""
        records = [
            r for r in self.registry if not request.id_glob or fnmatch.fnmatchcase(r.id, request.id_glob)
        ]
        return pb.device.ListDevicesResponse(
            devices=[
                device_to_pb(r, with_signals=not request.omit_signals)
                for r in sorted(records, key=lambda r: r.id)
            ]
        )

    @grpc_errors
    async def GetDevice(self, request, context):  # noqa: N802
        """One device by id."""
        return pb.device.GetDeviceResponse(device=device_to_pb(self.registry.get(request.id)))

    @grpc_errors
    async def WatchDevices(self, request, context):  # noqa: N802
        """The devices now, then every change to them."""
        watch = DeviceWatch(WATCH_QUEUE_EVENTS)
        remove = self.registry.add_listener(watch.put)
        try:
            if request.include_existing:
                for record in self.registry:
                    yield pb.device.WatchDevicesResponse(type=1, device=device_to_pb(record))
            while True:
                yield await watch.get()
        finally:
            remove()


WATCH_QUEUE_EVENTS = 10_000  # device events a WatchDevices stream may have queued


class DeviceWatch:
    """The queue of one WatchDevices stream: a stalled watcher loses events, counted and told, never hidden."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[pb.device.WatchDevicesResponse] = asyncio.Queue(maxsize=size)
        self.lost = 0  # dropped since the last notice
        self.total_lost = 0

    def put(self, event: DeviceEvent, record: DeviceRecord) -> None:
        """Registry listener: queue the event, or count it lost (a notice goes ahead of the next one)."""
        if self.queue.qsize() >= self.queue.maxsize - (1 if self.lost else 0):
            self.lost += 1
            self.total_lost += 1
            return
        if self.lost:
            self.queue.put_nowait(self._notice())
        self.queue.put_nowait(pb.device.WatchDevicesResponse(type=_EVENT[event], device=device_to_pb(record)))

    async def get(self) -> pb.device.WatchDevicesResponse:
        """The next message; a drop notice as soon as the queue is drained, if events were lost."""
        if self.queue.empty() and self.lost:
            return self._notice()
        return await self.queue.get()

    def _notice(self) -> pb.device.WatchDevicesResponse:
        lost, self.lost = self.lost, 0
        return pb.device.WatchDevicesResponse(
            type=pb.device.DEVICE_EVENT_TYPE_DROPPED,
            dropped_events=lost,
            total_dropped_events=self.total_lost,
        )


class TelemetryService(pb.telemetry_grpc.TelemetryServiceServicer):
    """Subscribe and Read."""

    def __init__(
        self,
        bus: TelemetryBus,
        devices: DeviceManager,
        max_message_bytes: int = 4_000_000,
        max_value_bytes: int = 65_536,
    ) -> None:
        self.bus, self.devices = bus, devices
        self.max_message_bytes = max_message_bytes  # telemetry.max_message_bytes
        self.min_message_bytes = 2 * max_value_bytes + 4096  # one value always fits

    def _limit(self, asked: int, field: str) -> int:
        """The message size limit a request asks for (0 = the bridge's); InvalidArgument when too small."""
        if asked and asked < self.min_message_bytes:
            raise InvalidArgument(
                f"{field} must be 0 or at least {self.min_message_bytes} bytes "
                "(twice telemetry.max_value_bytes plus 4096, so one value always fits)"
            )
        return min(asked or self.max_message_bytes, self.max_message_bytes)

    @grpc_errors
    async def Subscribe(self, request, context):  # noqa: N802
        """Stream the selected signals: catalog, initial values, sync, then updates."""
        options = subscription_options(request)
        subscription = self.bus.subscribe(list(request.paths), options)
        types = self.bus.registry.value_types
        limit = self._limit(request.max_message_bytes, "max_message_bytes")
        try:
            async for update in subscription.updates():
                if isinstance(update, BatchUpdate):  # no message past what a default client receives
                    for chunk in batch_update_chunks(update.batches, types, limit):
                        yield chunk
                else:
                    yield update_to_pb(update, types)
        finally:
            subscription.close()

    @grpc_errors
    async def Read(self, request, context):  # noqa: N802
        """The latest values of the selected signals, from the cache or read from the devices."""
        selected = self.bus.read_cached(list(request.paths))
        start = page_start(request.page_token, len(selected))
        limit = self._limit(request.max_response_bytes, "max_response_bytes")
        values: dict[int, tuple[object, int, int]] = {}
        if request.from_device:
            values = await self._read_devices(selected[start:], context.time_remaining())
        response = pb.telemetry.ReadResponse()
        now = time.time_ns()
        size = 0
        for index in range(start, len(selected)):
            path, signal = selected[index]
            entry = read_entry(path, signal, values.get(signal.alias) or self.bus.value_of(signal.alias), now)
            size += entry.ByteSize() + 8  # field tag and length of the entry
            if size > limit and index > start:  # at least one value per page
                response.next_page_token = f"{PAGE_PREFIX}{index}"
                break
            response.values.append(entry)
        return response

    async def _read_devices(self, selected, time_remaining: float | None):
        """Read from each device within the RPC's deadline, keeping a margin so the answer still arrives."""
        if time_remaining is None:
            time_remaining = DEFAULT_READ_SECONDS
        deadline = time.monotonic() + time_remaining - min(0.5, 0.2 * time_remaining)
        by_device = defaultdict(list)
        for path, signal in selected:
            by_device[path.split("/", 1)[0]].append(signal)
        out = {}
        for device_id, signals in by_device.items():
            timeout = deadline - time.monotonic()
            batch = self.devices.guard_of(device_id).check(
                await self.devices.read(device_id, signals, timeout)
            )
            qualities = batch.qualities or [1] * len(batch.aliases)
            out.update(
                zip(batch.aliases, zip(batch.values, batch.timestamps, qualities, strict=True), strict=True)
            )
        return out


class CommandService(pb.command_grpc.CommandServiceServicer):
    """Execute, Cancel, GetCommand, ListCommands."""

    def __init__(self, commands: CommandManager) -> None:
        self.commands = commands

    @grpc_errors
    async def Execute(self, request, context):  # noqa: N802
        """Submit a command and stream its events until it ends."""
        spec = spec_from_pb(request, origin=f"grpc:{peer_of(context)}")
        spec.identity = current_identity()  # for the command-level gates: per-device command classes, audit
        record, _existed = self.commands.submit(spec)
        async for event in self.commands.follow(record):
            yield event_to_pb(event)

    @grpc_errors
    async def Cancel(self, request, context):  # noqa: N802
        """Cancel a queued or running command."""
        record = self.commands.cancel(request.command_id, identity=current_identity())
        return pb.command.CancelResponse(command=command_to_pb(record))

    @grpc_errors
    async def GetCommand(self, request, context):  # noqa: N802
        """One command by id."""
        return pb.command.GetCommandResponse(command=command_to_pb(self.commands.get(request.command_id)))

    @grpc_errors
    async def ListCommands(self, request, context):  # noqa: N802
        """The latest commands, of one device or all."""
        records = self.commands.list(request.device_id, request.limit or 100)
        return pb.command.ListCommandsResponse(commands=[command_to_pb(r) for r in records])

    # -- Jog (issue 7, command safety): the deadman-held motion stream; the logic is in bridge/jog.py --
    @grpc_errors
    async def Jog(self, request_iterator, context):  # noqa: N802
        """Continuous motion held by a deadman: a start, then heartbeats and targets."""
        first = await anext(request_iterator, None)
        if first is None:
            return
        if first.WhichOneof("step") != "start":
            raise InvalidArgument("a Jog stream starts with `start` (device and deadman interval)")
        start = first.start
        interval = seconds(start.deadman_interval) if start.HasField("deadman_interval") else None
        session = JogSession(
            self.commands, start.device_id, current_identity(), interval, f"jog:{peer_of(context)}"
        )
        try:
            async for request in request_iterator:
                step = request.WhichOneof("step")
                if step in ("move_joints", "move_linear"):
                    target = pb.command.ExecuteRequest(
                        device_id=start.device_id, **{step: getattr(request, step)}
                    )
                    record = session.target(spec_from_pb(target, origin=session.origin))
                    yield pb.command.JogResponse(event=event_to_pb(CommandEvent.of(record)))
                elif step == "heartbeat":
                    session.heartbeat()
                else:
                    raise InvalidArgument(f"unexpected {step or 'empty'} message in a Jog stream")
        finally:
            session.end()  # the stream ended, broke or failed: a device it moved gets a Stop


class BridgeService(pb.bridge_grpc.BridgeServiceServicer):
    """GetInfo, GetUplinkStatus, ApproveDevice."""

    def __init__(self, parts: ApiParts) -> None:
        self.parts = parts

    @grpc_errors
    async def GetInfo(self, request, context):  # noqa: N802
        """The bridge's identity, version, drivers, uptime and start-up warnings."""
        b = self.parts
        devices = list(b.registry)
        response = pb.bridge.GetInfoResponse(
            version=__version__,
            bridge_id=b.bridge_id,
            uptime=duration(time.monotonic() - b.started_monotonic),
            devices=len(devices),
            devices_online=sum(1 for d in devices if d.available),
            subscribers=len(b.bus.subscriptions),
            samples_in=b.bus.samples_in,
            samples_out=b.bus.samples_out,
            samples_dropped=b.bus.samples_dropped,
            drivers=b.drivers,
            warnings=b.warnings,
        )
        response.started.FromNanoseconds(b.started_ns)
        caller = current_identity() or LOCAL_ADMIN  # no security section: the local caller, full rights
        response.caller.name, response.caller.role = caller.name, int(caller.role)
        if b.audit_head is not None:
            head = b.audit_head()
            response.audit_head.segment, response.audit_head.sequence = head.segment, head.seq
            response.audit_head.hash, response.audit_head.mac = head.hash, head.mac
        return response

    @grpc_errors
    async def GetUplinkStatus(self, request, context):  # noqa: N802
        """The uplink's connection state, backlog and traffic."""
        s = self.parts.uplink_status()
        return pb.bridge.GetUplinkStatusResponse(
            state=int(s.state),
            broker=s.broker,
            group_id=s.group_id,
            edge_node_id=s.edge_node_id,
            primary_host_id=s.primary_host_id,
            last_error=s.last_error,
            backlog_messages=s.backlog_messages,
            backlog_bytes=s.backlog_bytes,
            backlog_samples=s.backlog_samples,
            oldest_age=duration(s.oldest_age_seconds),
            dropped_messages=s.dropped_messages,
            dropped_samples=s.dropped_samples,
            expired_messages=s.expired_messages,
            expired_samples=s.expired_samples,
            published_messages=s.published_messages,
            published_samples=s.published_samples,
            replayed_messages=s.replayed_messages,
            commands_accepted=s.commands_accepted,
            commands_rejected=s.commands_rejected,
            outbox_path=s.outbox_path,
            resent_samples=s.resent_samples,
        )

    @grpc_errors
    async def ApproveDevice(self, request, context):  # noqa: N802
        """Let a discovered device that waits for approval connect."""
        return pb.bridge.ApproveDeviceResponse(
            device=device_to_pb(await self.parts.devices.approve(request.device_id))
        )
