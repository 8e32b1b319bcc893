"""The bridge process of a benchmark: `python -m bench.bridge_proc --devices JSON`, prints `READY host:port`.

Discovery and metrics are off and gRPC binds 127.0.0.1 on a free port, so the process measures the
telemetry and command paths alone. The bench driver is registered here, not through entry points.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from bench import bench_driver
from bench.common import emit_ready
from bridge.app import BridgeApp
from bridge.config import parse_config
from bridge.driver_catalog import DriverCatalog
from bridge.runner import stop_event
from drivers.base import Driver
from drivers.sim.driver import SimDriver


def catalog(with_opcua: bool) -> DriverCatalog:
    """sim and bench always; opcua only when a device uses it (it imports asyncua)."""
    classes: dict[str, type[Driver]] = {"sim": SimDriver, "bench": bench_driver.BenchDriver}
    if with_opcua:
        from drivers.opcua.driver import OpcUaDriver

        classes["opcua"] = OpcUaDriver
    return DriverCatalog(classes)


def config(devices: list[dict], queue_samples: int):  # type: ignore[no-untyped-def]
    """A loopback-only bridge config without discovery or metrics."""
    return parse_config({
        "bridge": {"id": "bench-bridge", "log_level": "WARNING"},
        "grpc": {"address": "127.0.0.1:0", "grace_seconds": 0.5, "max_receive_message_bytes": 4 << 20},
        "metrics": {"enabled": False},
        "discovery": {"enabled": False},
        "telemetry": {"subscriber_queue_samples": queue_samples},
        "devices": devices,
    }, "bench", env={})


async def serve(devices: list[dict], queue_samples: int) -> None:
    """Start the bridge, print READY, run until SIGTERM/SIGINT, stop it."""
    stop = stop_event()
    cfg = config(devices, queue_samples)
    drivers = catalog(any(d.get("driver") == "opcua" for d in devices))
    drivers.check(cfg, "bench")
    app = BridgeApp(cfg, drivers)
    bench_driver.BUS = app.bus
    await app.start()
    try:
        emit_ready(app.api_address)
        await stop.wait()
    finally:
        await app.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bridge_proc")
    parser.add_argument("--devices", default="[]", help="JSON list of device entries (config format)")
    parser.add_argument("--queue-samples", type=int, default=200_000, help="telemetry.subscriber_queue_samples")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    asyncio.run(serve(json.loads(args.devices), args.queue_samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
