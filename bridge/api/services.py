"""The four Linebridge gRPC services: convert the request, call the core, convert the answer."""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections import defaultdict
from typing import TYPE_CHECKING

import grpc

from bridge import __version__
from bridge.api import pb
from bridge.api.convert import (
    command_to_pb,
    device_to_pb,
    duration,
    event_to_pb,
    spec_from_pb,
    subscription_options,
    update_to_pb,
    value_to_pb,
)
from bridge.api.errors import grpc_errors
from bridge.errors import Unavailable
from bridge.registry import DeviceEvent, DeviceRecord

if TYPE_CHECKING:
    from bridge.app import BridgeApp as Bridge

_EVENT = {DeviceEvent.ADDED: 1, DeviceEvent.CHANGED: 2, DeviceEvent.REMOVED: 3}


def peer_of(context: grpc.aio.ServicerContext) -> str:
    return context.peer() or "unknown"


class DeviceService(pb.device_grpc.DeviceServiceServicer):
    """ListDevices, GetDevice, WatchDevices."""

    def __init__(self, bridge: Bridge) -> None:
        self.registry = bridge.registry

    @grpc_errors
    async def ListDevices(self, request, context):  # noqa: N802
        records = [r for r in self.registry if not request.id_glob or fnmatch.fnmatchcase(r.id, request.id_glob)]
        return pb.device.ListDevicesResponse(
            devices=[device_to_pb(r, with_signals=not request.omit_signals) for r in sorted(records, key=lambda r: r.id)])

    @grpc_errors
    async def GetDevice(self, request, context):  # noqa: N802
        return pb.device.GetDeviceResponse(device=device_to_pb(self.registry.get(request.id)))

    @grpc_errors
    async def WatchDevices(self, request, context):  # noqa: N802
        queue: asyncio.Queue[tuple[DeviceEvent, pb.device.Device]] = asyncio.Queue(maxsize=10_000)

        def listener(event: DeviceEvent, record: DeviceRecord) -> None:
            if not queue.full():  # a stalled watcher loses events rather than growing without bound
                queue.put_nowait((event, device_to_pb(record)))

        remove = self.registry.add_listener(listener)
        try:
            if request.include_existing:
                for record in self.registry:
                    yield pb.device.WatchDevicesResponse(type=1, device=device_to_pb(record))
            while True:
                event, device = await queue.get()
                yield pb.device.WatchDevicesResponse(type=_EVENT[event], device=device)
        finally:
            remove()


class TelemetryService(pb.telemetry_grpc.TelemetryServiceServicer):
    """Subscribe and Read."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.bus = bridge.bus

    @grpc_errors
    async def Subscribe(self, request, context):  # noqa: N802
        options = subscription_options(request)
        subscription = self.bus.subscribe(list(request.paths), options)
        types = self.bus.registry.value_types
        try:
            async for update in subscription.updates():
                yield update_to_pb(update, types)
        finally:
            subscription.close()

    @grpc_errors
    async def Read(self, request, context):  # noqa: N802
        selected = self.bus.read_cached(list(request.paths))
        values: dict[int, tuple[object, int, int]] = {}
        if request.from_device:
            values = await self._read_devices(selected)
        response = pb.telemetry.ReadResponse()
        for path, signal in selected:
            item = values.get(signal.alias) or self.bus.value_of(signal.alias)
            entry = response.values.add(path=path, value_type=int(signal.value_type), unit=signal.unit)
            if item is not None:
                value, ts, quality = item
                entry.value.CopyFrom(value_to_pb(value))
                entry.timestamp_ns, entry.quality = ts, quality
        return response

    async def _read_devices(self, selected):
        by_device = defaultdict(list)
        for path, signal in selected:
            by_device[path.split("/", 1)[0]].append(signal)
        out = {}
        for device_id, signals in by_device.items():
            driver = self.bridge.driver_of(device_id)
            if driver is None:
                raise Unavailable(f"device {device_id!r} is not online")
            batch = await driver.read(signals)
            qualities = batch.qualities or [1] * len(batch.aliases)
            out.update(zip(batch.aliases, zip(batch.values, batch.timestamps, qualities, strict=True), strict=True))
        return out


class CommandService(pb.command_grpc.CommandServiceServicer):
    """Execute, Cancel, GetCommand, ListCommands."""

    def __init__(self, bridge: Bridge) -> None:
        self.commands = bridge.commands

    @grpc_errors
    async def Execute(self, request, context):  # noqa: N802
        record, _existed = self.commands.submit(spec_from_pb(request, origin=f"grpc:{peer_of(context)}"))
        async for event in self.commands.follow(record):
            yield event_to_pb(event)

    @grpc_errors
    async def Cancel(self, request, context):  # noqa: N802
        return pb.command.CancelResponse(command=command_to_pb(self.commands.cancel(request.command_id)))

    @grpc_errors
    async def GetCommand(self, request, context):  # noqa: N802
        return pb.command.GetCommandResponse(command=command_to_pb(self.commands.get(request.command_id)))

    @grpc_errors
    async def ListCommands(self, request, context):  # noqa: N802
        records = self.commands.list(request.device_id, request.limit or 100)
        return pb.command.ListCommandsResponse(commands=[command_to_pb(r) for r in records])


class BridgeService(pb.bridge_grpc.BridgeServiceServicer):
    """GetInfo."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    @grpc_errors
    async def GetInfo(self, request, context):  # noqa: N802
        b = self.bridge
        devices = list(b.registry)
        response = pb.bridge.GetInfoResponse(
            version=__version__, bridge_id=b.config.bridge.id, uptime=duration(time.monotonic() - b.started_monotonic),
            devices=len(devices), devices_online=sum(1 for d in devices if d.available),
            subscribers=len(b.bus.subscriptions), samples_in=b.bus.samples_in, samples_out=b.bus.samples_out,
            samples_dropped=b.bus.samples_dropped, drivers=b.drivers.names(), warnings=b.warnings)
        response.started.FromNanoseconds(b.started_ns)
        return response
