"""`linebridge where LOAD_ID` and `linebridge fleet`: the TransportService on the command line."""

from __future__ import annotations

import argparse
import math
from datetime import UTC, datetime

from linebridge.api import pb
from linebridge.client import AsyncClient

STATE = {v.number: v.name.removeprefix("DEVICE_STATE_") for v in pb.device.DeviceState.DESCRIPTOR.values}


def _when(stamp: object) -> str:
    ns = stamp.ToNanoseconds()  # type: ignore[attr-defined]
    if not ns:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _where_text(loc: pb.transport.Location) -> str:
    zones = f" in {', '.join(loc.zones)}" if loc.zones else ""
    return f"{loc.map_id} ({loc.x:.2f}, {loc.y:.2f}) heading {math.degrees(loc.theta):.0f}°{zones}"


async def where(client: AsyncClient, args: argparse.Namespace) -> int:
    """Print where a load is (an unknown load is NOT_FOUND: exit code 1 with the bridge's words)."""
    found = await client.locate_load(args.load_id)
    how = "on board" if found.on_board else "dropped by"
    print(
        f"{found.load_id}: {how} {found.device_id} at {_where_text(found.location)}, seen {_when(found.last_seen)}"
    )
    return 0


async def fleet(client: AsyncClient, args: argparse.Namespace) -> int:
    """Print a table of AGVs: position, load, battery, order progress, errors."""
    rows = [["AGV", "STATE", "MAP", "X", "Y", "ZONES", "LOAD", "BATTERY", "ORDER", "AT", "LEFT", "ERRORS"]]
    for t in await client.transporters():
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


async def zones(client: AsyncClient, args: argparse.Namespace) -> int:
    """Print the configured zones: map, name and polygon corners."""
    found = await client.zones(args.map)
    if not found:
        print("no zones" + (f" on map {args.map}" if args.map else ""))
        return 0
    for z in found:
        corners = " ".join(f"({p.x:g}, {p.y:g})" for p in z.points)
        print(f"{z.map_id}  {z.name}  {corners}")
    return 0
