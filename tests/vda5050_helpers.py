"""Test helpers for VDA 5050: a simulated fleet on the test broker, a bridge on it, orders and waits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from linebridge.app import BridgeApp
from linebridge.commands.manager import CommandRecord, CommandSpec
from linebridge.drivers.vda5050 import messages as m
from linebridge.drivers.vda5050.simulator import AgvFleet
from linebridge.drivers.vda5050.stations import route_order
from linebridge.model import CommandKind
from tests.mqtt_broker import Broker

MANUFACTURER = "linebridge-sim"


def fleet_device(broker: Broker, **options: Any) -> dict[str, Any]:
    """A `devices:` entry for the fleet on the test broker."""
    return {
        "id": "fleet",
        "driver": "vda5050",
        "endpoint": f"vda5050+mqtt://127.0.0.1:{broker.port}?interface=uagv&manufacturer={MANUFACTURER}",
        "options": options,
    }


@pytest.fixture
async def fleet(broker: Broker) -> AsyncIterator[AgvFleet]:
    """Three simulated AGVs (fast actions, a state at least every 2 s) on the test broker."""
    agvs = AgvFleet(broker.url, 3, viz_hz=10, state_interval=2, action_seconds=0.2, reconnect_seconds=0.2)
    await agvs.start()
    try:
        yield agvs
    finally:
        await agvs.stop()


async def until(condition: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    """Wait for a condition with a bounded timeout (fails the test naming what was awaited)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


def value(app: BridgeApp, device_id: str, path: str) -> object:
    """The latest value of a signal, or None."""
    record = app.registry.find(device_id)
    if record is None or path not in record.signals:
        return None
    found = app.bus.value_of(record.signals[path].alias)
    return None if found is None else found[0]


def order_json(serial: str, order_id: str, path: list[str], **kwargs: Any) -> str:
    """The body of an `order` command (no header: the driver adds it)."""
    order = route_order(MANUFACTURER, serial, order_id, path, **kwargs)
    body = msgspec.to_builtins(order)
    for key in ("headerId", "timestamp", "version", "manufacturer", "serialNumber"):
        body.pop(key)
    return json.dumps(body)


def order_spec(device_id: str, text: str, timeout: float = 60.0) -> CommandSpec:
    return CommandSpec(device_id, CommandKind.INVOKE, method="order", args=[text], timeout=timeout)


def instant_spec(device_id: str, actions: list[dict[str, Any]], timeout: float = 20.0) -> CommandSpec:
    return CommandSpec(
        device_id, CommandKind.INVOKE, method="instant_actions", args=[json.dumps(actions)], timeout=timeout
    )


async def finished(record: CommandRecord, timeout: float = 60.0) -> CommandRecord:
    await until(lambda: record.state.final, timeout, f"command {record.id} to end")
    return record


def encode(message: msgspec.Struct) -> bytes:
    return m.encode(message)
