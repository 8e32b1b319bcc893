"""Client of the `order_rtt` scenario: order accepted -> the AGV's first state showing it.

`python -m bench.vda5050_rtt --mode bridge|raw --port P --count N` sends N one-node orders to the
simulated AGV agv-001 (standing on goods-in) one after another. bridge: an in-process BridgeApp with a
`vda5050` fleet device; the clock starts before `CommandManager.submit()` (§6.6 checks, queue, audit
off) and stops when the driver decodes the first state with the new orderId. raw: an aiomqtt client
publishes the same order JSON and JSON-decodes states until one shows it. Prints one RESULT line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiomqtt
import msgspec

from bench.common import emit_result
from linebridge.drivers.vda5050 import messages as m

PREFIX = "uagv/v2/linebridge-sim/agv-001"


def body(order_id: str) -> dict[str, object]:
    node = {
        "nodeId": "goods-in",
        "sequenceId": 0,
        "released": True,
        "actions": [],
        "nodePosition": {"x": 0.0, "y": 0.0, "mapId": "plant"},
    }
    return {"orderId": order_id, "orderUpdateId": 0, "nodes": [node], "edges": []}


async def raw(args: argparse.Namespace) -> list[float]:
    times = []
    async with aiomqtt.Client("127.0.0.1", args.port, identifier="bench-rtt-raw") as c:
        await c.subscribe(f"{PREFIX}/state")
        messages = c.messages
        for i in range(args.count):
            order_id = f"raw-{i}"
            header = {
                "headerId": i,
                "timestamp": m.now().isoformat(),
                "version": m.VERSION,
                "manufacturer": "linebridge-sim",
                "serialNumber": "agv-001",
            }
            started = time.perf_counter()
            await c.publish(f"{PREFIX}/order", json.dumps({**header, **body(order_id)}), qos=0)
            async for message in messages:
                if msgspec.json.decode(message.payload).get("orderId") == order_id:  # type: ignore[arg-type]
                    break
            times.append(time.perf_counter() - started)
    return times


async def bridge(args: argparse.Namespace) -> list[float]:
    from linebridge.app import BridgeApp
    from linebridge.commands.manager import CommandSpec
    from linebridge.config import parse_config
    from linebridge.devices.catalog import DriverCatalog
    from linebridge.model import CommandKind, DeviceState

    endpoint = f"vda5050+mqtt://127.0.0.1:{args.port}?interface=uagv&manufacturer=linebridge-sim"
    config = parse_config(
        {
            "bridge": {"id": "bench-rtt"},
            "grpc": {"address": "127.0.0.1:0"},
            "metrics": {"enabled": False},
            "discovery": {"enabled": False},
            "audit": {"enabled": False},
            "devices": [{"id": "fleet", "driver": "vda5050", "endpoint": endpoint}],
        },
        "bench",
        env={},
    )
    app = BridgeApp(config, DriverCatalog.from_entry_points())
    online = asyncio.Event()
    app.registry.add_listener(
        lambda _e, r: online.set() if r.id == "agv-001" and r.state is DeviceState.ONLINE else None
    )
    await app.start()
    times = []
    try:
        await online.wait()
        agv = app.driver_of("agv-001")
        while agv.state is None:  # the stateRequest sent on attach
            await agv.next_state()
        for i in range(args.count):
            order_id = f"bridge-{i}"
            spec = CommandSpec(
                "agv-001", CommandKind.INVOKE, method="order", args=[json.dumps(body(order_id))], timeout=30
            )
            started = time.perf_counter()
            record, _ = app.commands.submit(spec)
            while (await agv.next_state()).order_id != order_id:
                pass
            times.append(time.perf_counter() - started)
            async for _ in app.commands.follow(record):
                pass
    finally:
        await app.stop()
    return times


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["bridge", "raw"], required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=200)
    args = p.parse_args()
    times = asyncio.run(bridge(args) if args.mode == "bridge" else raw(args))
    q = statistics.quantiles(times, n=100)
    emit_result({"count": len(times), "p50_ms": 1000 * statistics.median(times), "p99_ms": 1000 * q[98]})


if __name__ == "__main__":
    main()
