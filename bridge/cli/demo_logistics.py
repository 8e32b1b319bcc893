"""The demo's goods transport: three simulated AGVs on the demo broker and a small "logistics" loop.

Each AGV carries bodies round the plant: at goods-in it picks a new body, drops it at the body shop,
picks it again, drops it at paint, then at goods-out (delivered), and drives back empty. Every leg is
one `order` command through the bridge's CommandManager, so it is checked, audited and visible in
`linebridge fleet` and `linebridge where BODY-...` like any other command.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any

from linebridge.app import BridgeApp
from linebridge.commands.manager import CommandRecord, CommandSpec, CommandState
from linebridge.errors import LinebridgeError
from linebridge.model import CommandKind, DeviceKind

log = logging.getLogger(__name__)

# The station graph of the simulator (linebridge sim agv-fleet): node -> (x, y) on map "plant".
STATIONS = {"goods-in": (0.0, 0.0), "body-shop": (24.0, 0.0), "paint": (24.0, 16.0), "goods-out": (0.0, 16.0)}
LOOP = list(STATIONS)
MAP_ID = "plant"
EDGE_SPEED = 2.0


def fleet_config(broker_url: str, manufacturer: str = "linebridge-sim") -> dict[str, Any]:
    """The `devices:` entry for the fleet on `broker_url` (mqtt://host:port)."""
    address = broker_url.removeprefix("mqtt://")
    return {
        "id": "fleet",
        "driver": "vda5050",
        "name": "AGV fleet",
        "endpoint": f"vda5050+mqtt://{address}?interface=uagv&manufacturer={manufacturer}",
    }


def zones_config(half: float = 3.0) -> dict[str, Any]:
    """The `transport:` section: a square zone round every station."""
    return {
        "zones": {
            MAP_ID: {
                name: [[x - half, y - half], [x + half, y - half], [x + half, y + half], [x - half, y + half]]
                for name, (x, y) in STATIONS.items()
            }
        }
    }


def _node(name: str, seq: int, actions: list[dict[str, Any]]) -> dict[str, Any]:
    x, y = STATIONS[name]
    position = {"x": x, "y": y, "mapId": MAP_ID, "allowedDeviationXY": 0.5}
    return {"nodeId": name, "sequenceId": seq, "released": True, "nodePosition": position, "actions": actions}


def _load(kind: str, action_id: str, load_id: str) -> dict[str, Any]:
    params = [{"key": "loadId", "value": load_id}, {"key": "loadType", "value": "body"}]
    return {"actionType": kind, "actionId": action_id, "blockingType": "HARD", "actionParameters": params}


def leg(order_id: str, start: str, end: str, pick: str = "", drop: str = "") -> str:
    """An order body (JSON) for one leg: optionally pick a load at start and drop one at end."""
    nodes = [
        _node(start, 0, [_load("pick", f"{order_id}-pick", pick)] if pick else []),
        _node(end, 2, [_load("drop", f"{order_id}-drop", drop)] if drop else []),
    ]
    edge = {
        "edgeId": f"{start}->{end}",
        "sequenceId": 1,
        "released": True,
        "startNodeId": start,
        "endNodeId": end,
        "maxSpeed": EDGE_SPEED,
        "actions": [],
    }
    return json.dumps({"orderId": order_id, "orderUpdateId": 0, "nodes": nodes, "edges": [edge]})


async def _await(app: BridgeApp, record: CommandRecord) -> CommandRecord:
    async for _ in app.commands.follow(record):
        pass
    return record


async def carry(app: BridgeApp, device_id: str, legs: int = 0) -> int:
    """Run one AGV's round trips; returns the legs driven (stops after `legs` when > 0)."""
    done = 0
    body = 0
    while not legs or done < legs:
        at = str(app.bus.value_of(app.registry.get(device_id).signals["order/last_node_id"].alias)[0])  # type: ignore[index]
        start = at if at in STATIONS else LOOP[0]
        end = LOOP[(LOOP.index(start) + 1) % len(LOOP)]
        if start == "goods-in":
            body += 1
        load = f"BODY-{device_id.removeprefix('agv-')}-{body}" if body and start != "goods-out" else ""
        text = leg(f"{device_id}-{done + 1}", start, end, pick=load, drop=load)
        try:
            record, _ = app.commands.submit(
                CommandSpec(
                    device_id, CommandKind.INVOKE, method="order", args=[text], timeout=120, origin="demo"
                )
            )
        except LinebridgeError as exc:
            log.warning("logistics: %s refused an order: %s", device_id, exc)
            await asyncio.sleep(2.0)
            continue
        if (await _await(app, record)).state is not CommandState.SUCCEEDED:
            log.warning(
                "logistics: %s order ended %s: %s", device_id, record.state.name, record.error_message
            )
            await asyncio.sleep(2.0)
        done += 1
    return done


async def run_logistics(app: BridgeApp, agvs: int = 3, legs: int = 0) -> None:
    """Wait for `agvs` AGV devices to be online, then run one carry loop per AGV (owned tasks)."""
    while True:
        online = [
            r.id
            for r in app.registry
            if r.description is not None
            and r.description.kind is DeviceKind.AGV
            and r.available
            and r.signals
        ]
        if len(online) >= agvs and all(
            app.bus.value_of(app.registry.get(d).signals["order/last_node_id"].alias) for d in online
        ):
            break
        await asyncio.sleep(0.2)
    async with asyncio.TaskGroup() as tasks:
        for device_id in sorted(online)[:agvs]:
            tasks.create_task(carry(app, device_id, legs), name=f"logistics:{device_id}")


async def alongside(app: BridgeApp, table: Awaitable[None], agvs: int = 3) -> None:
    """Run the logistics loop (an owned task) until `table`, the demo's live table, ends."""
    task = asyncio.create_task(run_logistics(app, agvs), name="logistics")
    try:
        await table
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
