"""The bridge process of a benchmark: `python -m bench.bridge_proc --devices JSON`, prints `READY host:port`.

Discovery and metrics are off and gRPC binds 127.0.0.1 on a free port, so the process measures the
telemetry and command paths alone. The bench driver is registered here, not through entry points;
the modbus, ur and opcua drivers are loaded only when a device uses them. `--uplink JSON` turns on the
Sparkplug uplink with that config section. Before READY it prints `PROBE host:port`, where
bench.probe serves snapshots of driver counters and the uplink status, and any `NOTE ...` lines the
scenario should report.

`--receipt-stamps` is a measuring instrument for `ur_rtde`: the UR driver dates a packet by its
controller timestamp anchored to the receipt of the first packet, so the stamp of packet i moves
with the simulator's own scheduling jitter. With the flag, PacketBatcher still counts gaps and late
packets from the controller timestamps but stamps every sample with the wall clock at which its
packet reached the driver, so subscriber time minus stamp is exactly receipt -> subscriber.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile

from bench import bench_driver, probe
from bench.common import emit_ready
from linebridge.app import BridgeApp
from linebridge.cli.runner import stop_event
from linebridge.config import CommandsConfig, Config, parse_config
from linebridge.devices.catalog import DriverCatalog
from linebridge.drivers.base import Driver
from linebridge.drivers.sim.driver import SimDriver

NOTE_PREFIX = "NOTE "  # a stdout line before READY that the scenario should pass on in its notes
OPTIONAL_DRIVERS = {  # type name -> (module, class); imported only when a device uses them
    "opcua": ("linebridge.drivers.opcua.driver", "OpcUaDriver"),
    "modbus": ("linebridge.drivers.modbus.driver", "ModbusDriver"),
    "ur": ("linebridge.drivers.ur.driver", "UrDriver"),
}


def catalog(used: set[str]) -> DriverCatalog:
    """sim and bench always; the others only when a device uses them (they import vendor libraries)."""
    import importlib

    classes: dict[str, type[Driver]] = {"sim": SimDriver, "bench": bench_driver.BenchDriver}
    for name in used & OPTIONAL_DRIVERS.keys():
        module, cls = OPTIONAL_DRIVERS[name]
        classes[name] = getattr(importlib.import_module(module), cls)
    return DriverCatalog(classes)


def config(
    devices: list[dict],
    queue_samples: int,
    uplink: dict | None = None,  # type: ignore[no-untyped-def]
    audit_dir: str = "",
    sections: dict | None = None,
):
    """A loopback-only bridge config without discovery or metrics.

    Command rate limits (per caller and per device) are off: command_rtt sends back-to-back
    commands to measure their round trip, not the limiter. The audit log stays on (with its
    defaults) in a folder of this process's own: a bridge locks its audit folder.
    """
    data = {
        "bridge": {"id": "bench-bridge", "log_level": "WARNING"},
        "grpc": {"address": "127.0.0.1:0", "grace_seconds": 0.5, "max_receive_message_bytes": 4 << 20},
        "metrics": {"enabled": False},
        "discovery": {"enabled": False},
        "telemetry": {"subscriber_queue_samples": queue_samples},
        "devices": devices,
        "uplink": uplink or {"enabled": False},
    }
    data.update(sections or {})
    if audit_dir and "audit" in Config.model_fields:
        data["audit"] = {"path": audit_dir}
    if "rate_limits" in CommandsConfig.model_fields:
        data["commands"] = {"rate_limits": {"identity": {"rate": 0}, "device": {"rate": 0}}}
    return parse_config(data, "bench", env={})


def stamp_at_receipt() -> str:
    """Make the UR driver stamp samples with their packet's receipt time (see the module docstring).

    Returns why it could not ("" when it did): the instrument wraps a private method of the driver.
    """
    import inspect

    from linebridge.drivers.ur.streaming import PacketBatcher

    anchored = getattr(PacketBatcher, "_stamp", None)
    if anchored is None or list(inspect.signature(anchored).parameters) != [
        "self",
        "controller_ts",
        "now_ns",
    ]:
        return (
            "PacketBatcher._stamp(self, controller_ts, now_ns) is gone; samples keep the driver's own stamps"
        )

    def _stamp(self: PacketBatcher, controller_ts: float, now_ns: int) -> int:
        anchored(self, controller_ts, now_ns)  # gap, late and out-of-order counting as shipped
        return now_ns

    PacketBatcher._stamp = _stamp  # type: ignore[method-assign]
    return ""


async def serve(args: argparse.Namespace) -> None:
    """Run the bridge of the command line with a temporary audit folder until SIGTERM/SIGINT."""
    stop = stop_event()
    devices = json.loads(args.devices)
    with tempfile.TemporaryDirectory(prefix="linebridge-bench-audit-") as audit_dir:
        cfg = config(
            devices,
            args.queue_samples,
            json.loads(args.uplink) if args.uplink else None,
            audit_dir,
            json.loads(args.sections) if args.sections else None,
        )
        await run_bridge(cfg, devices, args.receipt_stamps, stop)


async def run_bridge(cfg: Config, devices: list[dict], receipt_stamps: bool, stop: asyncio.Event) -> None:
    """Start the bridge, print PROBE (and NOTE lines) and READY, wait for `stop`, stop it."""
    drivers = catalog({d.get("driver", "") for d in devices})
    drivers.check(cfg, "bench")
    if receipt_stamps and (problem := stamp_at_receipt()):
        print(f"{NOTE_PREFIX}--receipt-stamps: {problem}", flush=True)  # the scenario reports it
    app = BridgeApp(cfg, drivers)
    bench_driver.BUS = app.bus
    bench_driver.UPLINK = app.uplink
    await app.start()
    server = await probe.serve(app)
    try:
        host, port = server.sockets[0].getsockname()[:2]
        print(f"{probe.PROBE_PREFIX}{host}:{port}", flush=True)
        emit_ready(app.api_address)
        await stop.wait()
    finally:
        server.close()
        await app.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bridge_proc")
    parser.add_argument("--devices", default="[]", help="JSON list of device entries (config format)")
    parser.add_argument(
        "--queue-samples", type=int, default=200_000, help="telemetry.subscriber_queue_samples"
    )
    parser.add_argument("--uplink", default="", help="JSON `uplink:` config section (enables the uplink)")
    parser.add_argument("--sections", default="", help="JSON object of more config sections (e.g. analytics)")
    parser.add_argument("--receipt-stamps", action="store_true", help="UR samples stamped at packet receipt")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
