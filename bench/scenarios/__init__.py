"""The benchmark scenarios, in the order `make bench` runs them; each module has NAME, TARGET and run(ctx)."""

from __future__ import annotations

import importlib
from types import ModuleType

ORDER = (
    "telemetry_throughput",
    "telemetry_latency",
    "fanout",
    "slow_consumer",
    "command_rtt",
    "opcua_ingest",
    "modbus_poll",
    "uplink_throughput",
    "uplink_replay",
    "ur_rtde",
    "startup",
    "vda5050_state",
    "order_rtt",
    "client_decode",
    "analytics_overhead",
)


def load(name: str) -> ModuleType:
    """The scenario module `bench.scenarios.NAME`."""
    if name not in ORDER:
        raise KeyError(f"unknown scenario {name!r} (known: {', '.join(ORDER)})")
    return importlib.import_module(f"bench.scenarios.{name}")
