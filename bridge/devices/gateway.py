"""Devices behind a gateway driver: one connection (a fleet broker), many devices (the AGVs on it).

The gateway's own device keeps its session; the devices it attaches get registry records of their
own (source "gateway"), so they are listed, read, subscribed, published by the uplink and commanded
like any other device. Their commands go to the handler the driver attached them with.
"""

from __future__ import annotations

import logging

from linebridge.drivers.base import Driver
from linebridge.model import DeviceDescription, DeviceState, SampleBatch
from linebridge.registry import DeviceRecord, DeviceRegistry
from linebridge.telemetry.bus import TelemetryBus

log = logging.getLogger(__name__)


class GatewayDevices:
    """Every device attached by a gateway driver, and the handler each one's commands go to."""

    def __init__(self, registry: DeviceRegistry, bus: TelemetryBus) -> None:
        self.registry, self.bus = registry, bus
        self._handlers: dict[str, Driver] = {}
        self._parent: dict[str, str] = {}  # device id -> the gateway device it came through
        self._refused: set[str] = set()

    def host_for(self, parent_id: str, driver: str, endpoint: str) -> _Host:
        """The DeviceHost handed to the gateway driver of `parent_id`."""
        return _Host(self, parent_id, driver, endpoint)

    def driver_of(self, device_id: str) -> Driver | None:
        """The handler that serves a device attached through a gateway (None for any other)."""
        return self._handlers.get(device_id)

    def children(self, parent_id: str) -> list[str]:
        """The ids of the devices a gateway device has attached."""
        return [d for d, p in self._parent.items() if p == parent_id]

    def attach(self, parent: _Host, device_id: str, description: DeviceDescription, handler: Driver) -> bool:
        """Register a device behind `parent`'s connection and bring it ONLINE; False when the id is taken."""
        record = self.registry.find(device_id)
        if record is not None and self._parent.get(device_id) != parent.parent_id:
            if device_id not in self._refused:  # once per id
                self._refused.add(device_id)
                log.warning(
                    "device %s behind %s not added: the id belongs to another device",
                    device_id,
                    parent.parent_id,
                )
            return False
        if record is None:
            record = self.registry.add(
                DeviceRecord(id=device_id, driver=parent.driver, endpoint=parent.endpoint, source="gateway")
            )
            self._parent[device_id] = parent.parent_id
        self._handlers[device_id] = handler
        if record.state in (DeviceState.DISCOVERED, DeviceState.OFFLINE):
            self.registry.set_state(device_id, DeviceState.CONNECTING, f"via {parent.parent_id}")
        self.registry.set_description(device_id, description)
        if not record.available:
            self.registry.set_state(device_id, DeviceState.ONLINE)
        return True

    def detach(self, parent: _Host, device_id: str, reason: str) -> None:
        """Take a gateway's device OFFLINE with `reason` (it keeps its record and aliases)."""
        record = self.registry.find(device_id)
        if record is None or self._parent.get(device_id) != parent.parent_id:
            return
        self._handlers.pop(device_id, None)
        if record.state is not DeviceState.OFFLINE:
            if record.state is DeviceState.DISCOVERED:
                self.registry.set_state(device_id, DeviceState.CONNECTING)
            self.registry.set_state(device_id, DeviceState.OFFLINE, reason)


class _Host:
    """The DeviceHost of one gateway device (drivers/base.py)."""

    def __init__(self, devices: GatewayDevices, parent_id: str, driver: str, endpoint: str) -> None:
        self.devices, self.parent_id, self.driver, self.endpoint = devices, parent_id, driver, endpoint

    def attach(self, device_id: str, description: DeviceDescription, handler: Driver) -> bool:
        return self.devices.attach(self, device_id, description, handler)

    def detach(self, device_id: str, reason: str) -> None:
        self.devices.detach(self, device_id, reason)

    def publish(self, batch: SampleBatch) -> None:
        self.devices.bus.publish(batch)
