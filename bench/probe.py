"""A bench-only window into the bridge process: driver counters and uplink status the API does not stream.

The bench bridge (bench.bridge_proc) serves one JSON snapshot per TCP connection on 127.0.0.1 and
prints `PROBE host:port` before its READY line. Scenarios take snapshots at the edges of their
measurement window and difference the counters: Modbus requests per connection, the UR driver's
stream counters, the bench driver's published samples and the uplink status.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from enum import Enum
from typing import Any

PROBE_PREFIX = "PROBE "


def _plain(value: object) -> object:
    return int(value) if isinstance(value, Enum) else value


def driver_stats(driver: Any) -> dict:
    """What a scenario may read about one driver (whatever of it the driver type has)."""
    stats: dict[str, object] = {"type": getattr(driver, "type_name", "")}
    if hasattr(driver, "stream_counters"):  # the UR driver: packets, gaps, late, ...
        stats["stream"] = driver.stream_counters()
    if hasattr(driver, "published"):  # the bench driver
        stats["published"] = driver.published
    plan = getattr(driver, "plan", None)
    if stats["type"] == "modbus" and plan is not None:
        from linebridge.drivers.modbus.driver import parse_endpoint
        from linebridge.drivers.modbus.transport import POOL

        host, port = parse_endpoint(driver.ctx.endpoint)
        stats["requests_per_cycle"] = plan.requests_per_cycle
        stats["naive_requests_per_cycle"] = plan.naive_requests_per_cycle
        for connection in POOL.connections():
            if (connection.host, connection.port) == (host, port):
                stats.update(
                    requests=connection.stats.requests,
                    timeouts=connection.stats.timeouts,
                    late_responses=connection.stats.late_responses,
                    connection_refs=connection.refs,
                )
    return stats


def snapshot(app: Any) -> dict:
    """Counters of every device's current driver and the uplink status, stamped with the wall clock."""
    devices = {}
    for record in list(app.registry):
        driver = app.driver_of(record.id)
        if driver is not None:
            devices[record.id] = driver_stats(driver)
    uplink = {k: _plain(v) for k, v in asdict(app.uplink_status()).items()}
    return {"time": time.time(), "devices": devices, "uplink": uplink}


async def serve(app: Any) -> asyncio.Server:
    """Serve snapshots of `app` on a free loopback port."""

    async def answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(json.dumps(snapshot(app)).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def read(address: str, timeout: float = 5.0) -> dict:
    """One snapshot from a probe at host:port."""
    host, _, port = address.rpartition(":")
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            line = await reader.readline()
        finally:
            writer.close()
    return json.loads(line)
