"""`linebridge uplink watch mqtt://HOST:PORT [--group G] [--node N] [--json]`: watch any edge node's
Sparkplug B traffic on a broker, decoded and checked (linebridge.uplink.watch)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TextIO

import aiomqtt

from linebridge.errors import ConfigError
from linebridge.uplink.config import UplinkConfig
from linebridge.uplink.sparkplug import ssl_context
from linebridge.uplink.topics import NAMESPACE
from linebridge.uplink.watch import Seen, Watcher


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `uplink watch` (on the `uplink` sub-command)."""
    parser.add_argument("broker", nargs="?", help="watch: mqtt://HOST:PORT or mqtts://HOST:PORT")
    parser.add_argument("--group", default="", help="watch: only this Sparkplug group")
    parser.add_argument("--node", default="", help="watch: only this edge node")
    parser.add_argument("--json", action="store_true", help="watch: one JSON object per message")
    parser.add_argument("--count", type=int, default=0, help="watch: stop after this many messages")
    parser.add_argument("--seconds", type=float, default=0, help="watch: stop after this many seconds")
    parser.add_argument("--username", default="", help="watch: broker user name")
    parser.add_argument("--password", default="", help="watch: broker password")
    parser.add_argument("--ca-file", default="", help="watch: CA certificate for mqtts://")


def filters(group: str, node: str) -> list[str]:
    """Topic filters for the chosen group and node (STATE always, to see the host's status)."""
    if node:
        found = [f"{NAMESPACE}/{group or '+'}/+/{node}/#"]
    else:
        found = [f"{NAMESPACE}/{group}/#" if group else f"{NAMESPACE}/#"]
    return found if not group and not node else [*found, f"{NAMESPACE}/STATE/#"]


def run_watch(args: argparse.Namespace) -> int:
    """Entry from linebridge.cli.main."""
    if not args.broker:
        raise ConfigError("uplink watch needs a broker: linebridge uplink watch mqtt://HOST:PORT")
    try:
        config = UplinkConfig(broker=args.broker, tls={"ca_file": args.ca_file})
    except ValueError as exc:
        raise ConfigError(f"broker: {exc.errors()[0]['msg'] if hasattr(exc, 'errors') else exc}") from None
    return asyncio.run(_watch(config, args, sys.stdout))


async def _watch(config: UplinkConfig, args: argparse.Namespace, out: TextIO) -> int:
    watcher = Watcher()
    count = 0
    client = aiomqtt.Client(
        config.host,
        config.port,
        username=args.username or None,
        password=args.password or None,
        tls_context=ssl_context(config),
        keepalive=30,
    )
    try:
        async with asyncio.timeout(args.seconds or None), client:
            await client.subscribe([(f, 1) for f in filters(args.group, args.node)])
            if not args.json:
                print(f"watching {config.broker} ({', '.join(filters(args.group, args.node))})", file=out)
            show = _Live(watcher, out) if not args.json and out.isatty() else None
            async for message in client.messages:
                seen = watcher.feed(str(message.topic), bytes(message.payload))  # type: ignore[arg-type]
                if show is not None:
                    show.update(seen)
                else:
                    _print(seen, args.json, out)
                count += 1
                if args.count and count >= args.count:
                    break
    except TimeoutError:
        pass
    except aiomqtt.MqttError as exc:
        print(f"linebridge: cannot watch {config.broker}: {exc}", file=sys.stderr)
        return 1
    if not args.json:
        _table(watcher, out)
    return 0


def _print(seen: Seen, as_json: bool, out: TextIO) -> None:
    if as_json:
        print(json.dumps(seen.as_json(), separators=(",", ":"), default=str), file=out, flush=True)
        return
    where = "/".join(p for p in (seen.group, seen.node, seen.device) if p)
    seq = f" seq {seen.seq}" if seen.seq is not None else ""
    values = ", ".join(f"{m.get('name', m.get('alias', '?'))}={m.get('value')!r}" for m in seen.metrics[:4])
    more = f" (+{len(seen.metrics) - 4})" if len(seen.metrics) > 4 else ""
    state = f" {seen.state}" if seen.state is not None else ""
    flags = "".join(f"\n    ! {f}" for f in seen.flags)
    print(f"{seen.verb:<7} {where}{seq}{state}  {values}{more}{flags}", file=out, flush=True)


class _Live:
    """On a terminal: the table redrawn at most once a second, with the last ten flags under it."""

    def __init__(self, watcher: Watcher, out: TextIO) -> None:
        self.watcher, self.out = watcher, out
        self.drawn = 0.0
        self.recent: list[str] = []

    def update(self, seen: Seen) -> None:
        """Take one message; redraw when a second has passed."""
        where = "/".join(p for p in (seen.group, seen.node, seen.device) if p)
        self.recent = (self.recent + [f"{seen.verb} {where}: {f}" for f in seen.flags])[-10:]
        if seen.time - self.drawn >= 1.0:
            self.drawn = seen.time
            print("\x1b[2J\x1b[H", end="", file=self.out)
            _table(self.watcher, self.out)
            print("\n".join(f"  ! {line}" for line in self.recent), file=self.out, flush=True)


def _table(watcher: Watcher, out: TextIO) -> None:
    print(
        f"\n{'node/device':<40} {'state':<8} {'births':>6} {'data':>6} {'samples':>8} {'flags':>5}  last flag",
        file=out,
    )
    for (group, node, device), row in sorted(watcher.table.items()):
        name = "/".join(p for p in (group, node, device) if p) or "?"
        births = row.messages.get("NBIRTH", 0) + row.messages.get("DBIRTH", 0)
        data = row.messages.get("NDATA", 0) + row.messages.get("DDATA", 0)
        state = "online" if row.online else "offline"
        print(
            f"{name:<40} {state:<8} {births:>6} {data:>6} {row.samples:>8} {row.flags:>5}  {row.last_flag}",
            file=out,
        )
