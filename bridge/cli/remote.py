"""CLI commands that talk to a running bridge over gRPC."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

import grpc

from linebridge.api import pb
from linebridge.api.convert import duration
from linebridge.cli import transport as transport_cli
from linebridge.cli.security import client_from_args
from linebridge.client import Client, Sample, value_message, value_of
from linebridge.errors import InvalidArgument
from linebridge.model import ValueType, parse_value_text
from linebridge.paths import split_path

STATE = {v.number: v.name.removeprefix("DEVICE_STATE_") for v in pb.device.DeviceState.DESCRIPTOR.values}
KIND = {v.number: v.name.removeprefix("DEVICE_KIND_").lower() for v in pb.device.DeviceKind.DESCRIPTOR.values}
CMD_STATE = {
    v.number: v.name.removeprefix("COMMAND_STATE_") for v in pb.command.CommandState.DESCRIPTOR.values
}
UPLINK_STATE = {
    v.number: v.name.removeprefix("UPLINK_STATE_") for v in pb.bridge.UplinkState.DESCRIPTOR.values
}
VTYPE = {v.number: v.name.removeprefix("VALUE_TYPE_").lower() for v in pb.common.ValueType.DESCRIPTOR.values}


async def run_client(args: argparse.Namespace) -> int:
    async with client_from_args(args) as client:
        try:
            return await COMMANDS[args.command](client, args)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.UNAVAILABLE and "connect" in (exc.details() or "").lower():
                print(f"linebridge: cannot reach a bridge at {args.target} (is it running?)", file=sys.stderr)
            else:
                print(f"linebridge: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


async def _devices(client: Client, args: argparse.Namespace) -> int:
    devices = await client.list_devices()
    rows = [["ID", "STATE", "KIND", "DRIVER", "ENDPOINT", "SIGNALS", "VENDOR/MODEL"]]
    for d in devices:
        rows.append(
            [
                d.id,
                STATE[d.state],
                KIND[d.kind],
                d.driver,
                d.endpoint,
                str(len(d.signals)),
                f"{d.vendor} {d.model}".strip(),
            ]
        )
    print(_table(rows))
    if args.detail:
        for d in devices:
            print(f"\n{d.id}: {d.name} ({d.source}; identity {d.identity or '-'})")
            if d.state_reason:
                print(f"  state reason: {d.state_reason}")
            print(f"  commands: {', '.join(d.capabilities.commands) or 'none'}")
            for m in d.capabilities.methods:
                print(f"  method {m.name}({', '.join(f'{a.name}: {VTYPE[a.value_type]}' for a in m.inputs)})")
            for key, text in sorted(d.details.items()):
                print(f"  {key}:")
                print("\n".join(f"    {line}" for line in text.splitlines()))
            for s in d.signals:
                access = {1: "r", 2: "w", 3: "rw"}.get(s.access, "?")
                print(f"  {s.path:<40} {VTYPE[s.value_type]:<7} {access:<3} {s.unit}")
    return 0


async def _info(client: Client, args: argparse.Namespace) -> int:
    info = await client.bridge.GetInfo(pb.bridge.GetInfoRequest())
    print(f"bridge {info.bridge_id} (linebridge {info.version}), up {info.uptime.seconds} s")
    print(f"devices {info.devices} ({info.devices_online} online), subscribers {info.subscribers}")
    print(f"samples in {info.samples_in}, out {info.samples_out}, dropped {info.samples_dropped}")
    print(f"drivers: {', '.join(info.drivers)}")
    for warning in info.warnings:
        print(f"WARNING: {warning}")
    return 0


def _fmt(sample: Sample) -> str:
    stamp = datetime.fromtimestamp(sample.timestamp_ns / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3]
    value = f"{sample.value:.4f}" if isinstance(sample.value, float) else str(sample.value)
    flag = "" if sample.quality == 1 else f"  [{pb.common.Quality.Name(sample.quality)}]"
    return f"{stamp}  {sample.path}  {value}{flag}"


async def _watch(client: Client, args: argparse.Namespace) -> int:
    options: dict[str, object] = {}
    if args.interval:
        options.update(trigger=3, sample_interval=duration(args.interval))
    elif args.on_change:
        options.update(trigger=2, deadband=args.deadband)
    seen = 0
    async for item in client.samples(args.paths, **options):
        if isinstance(item, Sample):
            print(_fmt(item), flush=True)
            seen += 1
            if args.count and seen >= args.count:
                break
        elif item.startswith("dropped"):
            print(f"-- this watcher fell behind and lost {item.split(':')[1]} samples", file=sys.stderr)
    return 0


async def _read(client: Client, args: argparse.Namespace) -> int:
    response = await client.telemetry.Read(
        pb.telemetry.ReadRequest(paths=args.paths, from_device=args.from_device)
    )
    for v in response.values:
        value = value_of(v.value)
        print(f"{v.path}  {'-' if value is None else value} {v.unit}".rstrip())
    return 0


async def _signal_types(client: Client, device_id: str) -> pb.device.Device:
    return (await client.devices.GetDevice(pb.device.GetDeviceRequest(id=device_id))).device


def _timeout(request: pb.command.ExecuteRequest, seconds: float) -> None:
    if seconds:
        request.timeout.CopyFrom(duration(seconds))


async def _follow(client: Client, request: pb.command.ExecuteRequest) -> int:
    final = None
    async for event in client.commands.Execute(request):
        final = event
        line = f"{event.command_id}: {CMD_STATE[event.state]}"
        if event.progress_message:
            line += f" ({event.progress_message})"
        if event.error.reason:
            line += f" {event.error.reason}: {event.error.message}"
        if event.result:
            line += " -> " + ", ".join(str(value_of(v)) for v in event.result)
        print(line, flush=True)
    return 0 if final is not None and final.state == pb.command.COMMAND_STATE_SUCCEEDED else 1


async def _write(client: Client, args: argparse.Namespace) -> int:
    parsed = []
    for text in args.assignments:
        path, sep, raw = text.partition("=")
        if not sep:
            raise InvalidArgument(f"expected DEVICE/SIGNAL=VALUE, got {text!r}")
        parsed.append((*split_path(path), raw))
    devices = {d for d, _, _ in parsed}
    if len(devices) != 1:
        raise InvalidArgument("one write command addresses one device")
    device = await _signal_types(client, devices.pop())
    types = {s.path: ValueType(s.value_type) for s in device.signals}
    writes = []
    for _, signal, raw in parsed:
        if signal not in types:
            raise InvalidArgument(f"device {device.id} has no signal {signal!r}")
        writes.append(
            pb.command.SignalWrite(path=signal, value=value_message(parse_value_text(raw, types[signal])))
        )
    request = pb.command.ExecuteRequest(device_id=device.id, write=pb.command.WriteAction(writes=writes))
    _timeout(request, args.timeout)
    return await _follow(client, request)


async def _call(client: Client, args: argparse.Namespace) -> int:
    device = await _signal_types(client, args.device)
    methods = {m.name: m for m in device.capabilities.methods}
    if args.method not in methods:
        raise InvalidArgument(
            f"device {device.id} has no method {args.method!r} (methods: {', '.join(methods)})"
        )
    inputs = methods[args.method].inputs
    if len(inputs) != len(args.args):
        raise InvalidArgument(
            f"{args.method} takes {len(inputs)} argument(s): "
            + ", ".join(f"{a.name}: {VTYPE[a.value_type]}" for a in inputs)
        )
    values = [
        value_message(parse_value_text(raw, ValueType(a.value_type)))
        for a, raw in zip(inputs, args.args, strict=True)
    ]
    request = pb.command.ExecuteRequest(
        device_id=device.id, invoke=pb.command.InvokeAction(method=args.method, args=values)
    )
    _timeout(request, args.timeout)
    return await _follow(client, request)


async def _stop(client: Client, args: argparse.Namespace) -> int:
    return await _follow(
        client, pb.command.ExecuteRequest(device_id=args.device, stop=pb.command.StopAction())
    )


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


async def _uplink(client: Client, args: argparse.Namespace) -> int:
    s = await client.bridge.GetUplinkStatus(pb.bridge.GetUplinkStatusRequest())
    state = UPLINK_STATE[s.state]
    if state == "DISABLED":
        print("uplink: disabled (set uplink.enabled, or run with --mqtt mqtt://HOST:PORT)")
        return 0
    print(
        f"uplink: {state}  {s.broker}  edge node {s.group_id}/{s.edge_node_id}"
        + (f"  primary host {s.primary_host_id}" if s.primary_host_id else "")
    )
    if s.last_error:
        print(f"last error: {s.last_error}")
    age = s.oldest_age.seconds + s.oldest_age.nanos / 1e9
    print(
        f"backlog: {s.backlog_messages} payloads, {_size(s.backlog_bytes)}, {s.backlog_samples} samples, "
        f"oldest {age:.1f} s"
    )
    print(
        f"lost: {s.dropped_samples} samples in {s.dropped_messages} payloads (disk budget), "
        f"{s.expired_samples} samples in {s.expired_messages} payloads (age limit)"
    )
    print(
        f"published: {s.published_messages} payloads, {s.published_samples} samples "
        f"({s.replayed_messages} payloads replayed from the backlog)"
    )
    print(f"cloud commands: {s.commands_accepted} accepted, {s.commands_rejected} rejected")
    print(f"outbox: {s.outbox_path}")
    return 0


async def _approve(client: Client, args: argparse.Namespace) -> int:
    device = (await client.bridge.ApproveDevice(pb.bridge.ApproveDeviceRequest(device_id=args.device))).device
    print(f"{device.id}: approved, {STATE[device.state]} ({device.driver} at {device.endpoint})")
    return 0


COMMANDS = {
    "devices": _devices,
    "info": _info,
    "watch": _watch,
    "read": _read,
    "write": _write,
    "call": _call,
    "stop": _stop,
    "uplink": _uplink,
    "approve": _approve,
    "where": transport_cli.where,
    "fleet": transport_cli.fleet,
}
