"""CLI commands that talk to a running bridge, through the client SDK (linebridge.client)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from linebridge.api import pb
from linebridge.cli import transport as transport_cli
from linebridge.cli.alarms import COMMANDS as alarm_commands
from linebridge.cli.security import client_from_args
from linebridge.client import (
    AsyncClient,
    BridgeUnavailable,
    ClientError,
    Command,
    CommandState,
    Notice,
    NoticeKind,
    Quality,
    Sample,
    ValueType,
)
from linebridge.client.raw import value_of
from linebridge.errors import InvalidArgument
from linebridge.model import ValueType as CoreType
from linebridge.model import parse_value_text
from linebridge.paths import split_path

UPLINK_STATE = {
    0: "UNSPECIFIED",
    1: "DISABLED",
    2: "CONNECTING",
    3: "WAITING_FOR_HOST",
    4: "ONLINE",
    5: "OFFLINE",
}
ACCESS = {1: "r", 2: "w", 3: "rw"}


async def run_client(args: argparse.Namespace) -> int:
    """Run one client command; errors of the bridge become a one-line message and exit code 1."""
    async with client_from_args(args) as client:
        try:
            return await COMMANDS[args.command](client, args)
        except BridgeUnavailable:
            print(f"linebridge: cannot reach a bridge at {args.target} (is it running?)", file=sys.stderr)
        except ClientError as exc:
            name = exc.code.name if exc.code is not None else type(exc).__name__
            print(f"linebridge: {name}: {exc.message}", file=sys.stderr)
        return 1


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _type(value_type: ValueType) -> str:
    return value_type.name.lower()


async def _devices(client: AsyncClient, args: argparse.Namespace) -> int:
    devices = await client.devices()
    rows = [["ID", "STATE", "KIND", "DRIVER", "ENDPOINT", "SIGNALS", "VENDOR/MODEL"]]
    for d in devices:
        rows.append(
            [
                d.id,
                d.state.name,
                d.kind.name.lower(),
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
            print(f"  commands: {', '.join(d.commands) or 'none'}")
            for m in d.methods.values():
                print(f"  method {m.name}({', '.join(f'{a.name}: {_type(a.value_type)}' for a in m.inputs)})")
            for key, text in sorted(d.details.items()):
                print(f"  {key}:")
                print("\n".join(f"    {line}" for line in text.splitlines()))
            for s in d.signals.values():
                print(f"  {s.path:<40} {_type(s.value_type):<7} {ACCESS.get(s.access, '?'):<3} {s.unit}")
    return 0


async def _info(client: AsyncClient, args: argparse.Namespace) -> int:
    info = await client.info()
    print(f"bridge {info.bridge_id} (linebridge {info.version}), up {int(info.uptime_seconds)} s")
    print(f"devices {info.devices} ({info.devices_online} online), subscribers {info.subscribers}")
    print(f"samples in {info.samples_in}, out {info.samples_out}, dropped {info.samples_dropped}")
    print(f"drivers: {', '.join(info.drivers)}")
    if info.audit_seq:
        print(f"audit head: seq {info.audit_seq}, hash {info.audit_hash}")
    for warning in info.warnings:
        print(f"WARNING: {warning}")
    return 0


def _fmt(sample: Sample) -> str:
    stamp = datetime.fromtimestamp(sample.timestamp_ns / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3]
    value = f"{sample.value:.4f}" if isinstance(sample.value, float) else str(sample.value)
    known = sample.quality in Quality._value2member_map_
    flag = (
        ""
        if sample.quality == Quality.GOOD
        else f"  [{Quality(sample.quality).name if known else sample.quality}]"
    )
    return f"{stamp}  {sample.path}  {value}{flag}"


def _tell(notice: Notice) -> None:
    if notice.kind is NoticeKind.DROPPED:
        print(f"-- this watcher fell behind and lost {notice.samples} samples", file=sys.stderr)
    elif notice.kind in (NoticeKind.DISCONNECTED, NoticeKind.RECONNECTED):
        print(f"-- {notice.message}", file=sys.stderr)


async def _watch(client: AsyncClient, args: argparse.Namespace) -> int:
    subscription = client.subscribe(
        args.paths,
        on_change=args.on_change,
        deadband=args.deadband,
        interval=args.interval or None,
        on_notice=_tell,
    )
    seen = 0
    async for sample in subscription.samples():
        print(_fmt(sample), flush=True)
        seen += 1
        if args.count and seen >= args.count:
            break
    return 0


async def _read(client: AsyncClient, args: argparse.Namespace) -> int:
    """Print path, value, unit, quality and age of every selected signal (all of Read's pages)."""
    for v in await client.read_values(args.paths, from_device=args.from_device):
        print(read_line(v))
    return 0


def read_line(v: pb.telemetry.SignalValue) -> str:
    """One `read` line: "robot-1/speed  1.5 m/s  GOOD  age 0.2s" ("-" and no quality before a value)."""
    value = value_of(v.value)
    if value is None:
        return f"{v.path}  - {v.unit}".rstrip()
    quality = pb.common.Quality.Name(v.quality).removeprefix("QUALITY_")
    age = v.age.seconds + v.age.nanos / 1e9
    return f"{f'{v.path}  {value} {v.unit}'.rstrip()}  {quality}  age {age:.1f}s"


async def _follow(command: Command) -> int:
    async for event in command.events():
        line = f"{event.command_id}: {event.state.name}"
        if event.progress_message:
            line += f" ({event.progress_message})"
        if event.error_reason:
            line += f" {event.error_reason}: {event.error_message}"
        if event.result:
            line += " -> " + ", ".join(str(v) for v in event.result)
        print(line, flush=True)
    return 0 if command.state is CommandState.SUCCEEDED else 1


async def _write(client: AsyncClient, args: argparse.Namespace) -> int:
    parsed = []
    for text in args.assignments:
        path, sep, raw = text.partition("=")
        if not sep:
            raise InvalidArgument(f"expected DEVICE/SIGNAL=VALUE, got {text!r}")
        parsed.append((*split_path(path), raw))
    devices = {d for d, _, _ in parsed}
    if len(devices) != 1:
        raise InvalidArgument("one write command addresses one device")
    device = await client.device(devices.pop())
    writes = {}
    for _, signal, raw in parsed:
        if signal not in device.signals:
            raise InvalidArgument(f"device {device.id} has no signal {signal!r}")
        writes[signal] = parse_value_text(raw, CoreType(device.signals[signal].value_type))
    return await _follow(await client.execute(device.id, write=writes, timeout=args.timeout or None))


async def _call(client: AsyncClient, args: argparse.Namespace) -> int:
    device = await client.device(args.device)
    method = device.methods.get(args.method)
    if method is None:
        raise InvalidArgument(
            f"device {device.id} has no method {args.method!r} (methods: {', '.join(device.methods)})"
        )
    if len(method.inputs) != len(args.args):
        raise InvalidArgument(
            f"{args.method} takes {len(method.inputs)} argument(s): "
            + ", ".join(f"{a.name}: {_type(a.value_type)}" for a in method.inputs)
        )
    values = [
        parse_value_text(raw, CoreType(a.value_type)) for a, raw in zip(method.inputs, args.args, strict=True)
    ]
    return await _follow(
        await client.execute(device.id, invoke=method.name, args=values, timeout=args.timeout or None)
    )


async def _stop(client: AsyncClient, args: argparse.Namespace) -> int:
    return await _follow(await client.execute(args.device, stop=True))


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


async def _uplink(client: AsyncClient, args: argparse.Namespace) -> int:
    s = await client.uplink_status()
    state = UPLINK_STATE.get(s.state, str(s.state))
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


async def _approve(client: AsyncClient, args: argparse.Namespace) -> int:
    device = await client.approve(args.device)
    print(f"{device.id}: approved, {device.state.name} ({device.driver} at {device.endpoint})")
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
    "zones": transport_cli.zones,
    **alarm_commands,
}
