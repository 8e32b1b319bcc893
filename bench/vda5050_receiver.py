"""Receivers of the `vda5050_state` scenario: the bridge's vda5050 driver, or a raw JSON-decoding client.

`python -m bench.vda5050_receiver --mode bridge|raw --port P --agvs N --start-at T --duration S
--until U` subscribes to the fleet's state and visualization, prints READY (bridge: once all N AGVs are
devices), counts every message until wall-clock U and prints one RESULT line: messages (total and
inside the window), samples (bridge: samples in the batches handed to the bus) and the process's CPU
use inside the window. `raw` receives the same way (aiomqtt, each message handed over as paho reads
it) and only JSON-decodes each payload (msgspec, untyped) and counts it.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiomqtt
import msgspec

from bench.common import emit_result, window_cpu
from linebridge.drivers.vda5050.link import client, parse_endpoint

MANUFACTURER = "bench"


class Counter:
    """Messages (or batches) and samples, in total and inside the window."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.total = self.window = self.samples = self.window_samples = 0
        self.at_until = 0  # received by the end of the run (window + 3 s); the rest came late

    def add(self, samples: int) -> None:
        self.total += 1
        self.samples += samples
        now = time.time()
        if self.start <= now < self.end:
            self.window += 1
            self.window_samples += samples


async def drain(args: argparse.Namespace, count: Counter) -> None:
    """Run until `--until`, then on until nothing arrived for 2 s (at most 30 s): late is not lost."""
    await asyncio.sleep(max(0.0, args.until - time.time()))
    count.at_until = count.total
    for _ in range(15):
        before = count.total
        await asyncio.sleep(2.0)
        if count.total == before:
            return


async def raw(args: argparse.Namespace, count: Counter) -> None:
    """Receive like the driver does (aiomqtt, messages handed over as paho reads them), only JSON-decode."""
    decode = msgspec.json.decode

    def received(message: aiomqtt.Message) -> None:
        decode(message.payload)  # type: ignore[arg-type]
        count.add(0)

    address = parse_endpoint(f"mqtt://127.0.0.1:{args.port}")
    async with client(address, "bench-raw", on_message=received) as c:
        for topic in ("state", "visualization"):
            await c.subscribe(f"uagv/v2/{MANUFACTURER}/+/{topic}", qos=0)
        print("READY raw", flush=True)
        await drain(args, count)


async def bridge(args: argparse.Namespace, count: Counter) -> None:
    from linebridge.app import BridgeApp
    from linebridge.config import parse_config
    from linebridge.devices.catalog import DriverCatalog
    from linebridge.model import DeviceState

    config = parse_config(
        {
            "bridge": {"id": "bench-vda"},
            "grpc": {"address": "127.0.0.1:0"},
            "metrics": {"enabled": False},
            "discovery": {"enabled": False},
            "audit": {"enabled": False},
            "devices": [
                {
                    "id": "fleet",
                    "driver": "vda5050",
                    "endpoint": f"vda5050+mqtt://127.0.0.1:{args.port}?interface=uagv&manufacturer={MANUFACTURER}",
                }
            ],
        },
        "bench",
        env={},
    )
    app = BridgeApp(config, DriverCatalog.from_entry_points())
    app.bus.add_tap(lambda batch: count.add(len(batch)) if batch.device_id != "fleet" else None)
    online = asyncio.Event()

    def watch(*_: object) -> None:
        if sum(1 for r in app.registry if r.id != "fleet" and r.state is DeviceState.ONLINE) >= args.agvs:
            online.set()

    app.registry.add_listener(watch)
    await app.start()
    try:
        await online.wait()
        print("READY bridge", flush=True)
        await drain(args, count)
        driver = app.sessions["fleet"].driver
        count.bad = dict(driver.bad) if driver is not None else {}  # type: ignore[attr-defined]
    finally:
        await app.stop()


async def main_async(args: argparse.Namespace) -> None:
    count = Counter(args.start_at, args.start_at + args.duration)
    cpu = asyncio.create_task(window_cpu(args.start_at, args.start_at + args.duration))
    await (bridge if args.mode == "bridge" else raw)(args, count)
    emit_result(
        {
            "messages": count.total,
            "messages_at_until": count.at_until,
            "window_messages": count.window,
            "samples": count.samples,
            "window_samples": count.window_samples,
            "cpu_pct": await cpu,
            "bad": getattr(count, "bad", {}),
        }
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["bridge", "raw"], required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--agvs", type=int, default=200)
    p.add_argument("--start-at", type=float, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--until", type=float, required=True)
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
