"""`linebridge where LOAD_ID` and `linebridge fleet`: the TransportService on the command line."""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime

import grpc

from linebridge.api import pb
from linebridge.client import Client

STATE = {v.number: v.name.removeprefix("DEVICE_STATE_") for v in pb.device.DeviceState.DESCRIPTOR.values}


def _when(stamp: object) -> str:
    ns = stamp.ToNanoseconds()  # type: ignore[attr-defined]
    if not ns:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _where_text(loc: pb.transport.Location) -> str:
    zones = f" in {', '.join(loc.zones)}" if loc.zones else ""
    return f"{loc.map_id} ({loc.x:.2f}, {loc.y:.2f}) heading {math.degrees(loc.theta):.0f}°{zones}"


async def where(client: Client, args: argparse.Namespace) -> int:
    """Print where a load is."""
    try:
        found = await client.transport.LocateLoad(pb.transport.LocateLoadRequest(load_id=args.load_id))
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.NOT_FOUND:
            print(f"linebridge: {exc.details()}", file=sys.stderr)
            return 1
        raise
    how = "on board" if found.on_board else "dropped by"
    print(
        f"{found.load_id}: {how} {found.device_id} at {_where_text(found.location)}, seen {_when(found.last_seen)}"
    )
    return 0


async def fleet(client: Client, args: argparse.Namespace) -> int:
    """Print a table of AGVs: position, load, battery, order progress, errors."""
    rows = [["AGV", "STATE", "MAP", "X", "Y", "ZONES", "LOAD", "BATTERY", "ORDER", "AT", "LEFT", "ERRORS"]]
    response = await client.transport.ListTransporters(pb.transport.ListTransportersRequest())
    for t in response.transporters:
        loc = t.location
        moving = " driving" if t.driving else (" paused" if t.paused else "")
        rows.append(
            [
                t.device_id,
                STATE.get(t.state, "?") + moving,
                loc.map_id or "-",
                f"{loc.x:.2f}" if loc.map_id else "-",
                f"{loc.y:.2f}" if loc.map_id else "-",
                ",".join(loc.zones) or "-",
                ",".join(t.load_ids) or "-",
                f"{t.battery_charge:.1f}%",
                t.order_id or "-",
                t.last_node_id or "-",
                f"{t.nodes_left}n/{t.edges_left}e",
                t.errors or "-",
            ]
        )
    if len(rows) == 1:
        print("no AGVs")
        return 0
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows))
    return 0
