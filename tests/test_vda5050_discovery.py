"""The fleet broker found over mDNS (`_mqtt._tcp` with TXT vda5050=...), on loopback only."""

from __future__ import annotations

import os

import pytest

from linebridge.drivers.base import InvalidArgument, MdnsService
from linebridge.drivers.vda5050.driver import Vda5050Driver
from linebridge.drivers.vda5050.simulator import AgvFleet
from linebridge.model import DeviceState
from tests.conftest import BridgeFactory, wait_for_state
from tests.mqtt_broker import Broker


def test_txt_rules() -> None:
    svc = MdnsService("_mqtt._tcp.local.", "Plant Broker", "127.0.0.1", 1883, {"vda5050": "uagv/acme"})
    found = Vda5050Driver.from_mdns(svc)
    assert found.device_id == "fleet-plant-broker"
    assert found.endpoint == "vda5050+mqtt://127.0.0.1:1883?interface=uagv&manufacturer=acme"
    with pytest.raises(InvalidArgument, match="no vda5050 TXT"):
        Vda5050Driver.from_mdns(MdnsService("_mqtt._tcp.local.", "other", "127.0.0.1", 1883, {}))
    with pytest.raises(InvalidArgument, match="must not contain"):
        Vda5050Driver.from_mdns(MdnsService("_mqtt._tcp.local.", "x", "127.0.0.1", 1883, {"vda5050": "u#/a"}))


async def test_a_broker_announced_over_mdns_brings_its_agvs(
    broker: Broker, start_bridge: BridgeFactory
) -> None:
    name = f"lbtest-fleet-{os.getpid()}"  # unique: other helpers' announcements share loopback
    fleet = AgvFleet(broker.url, 2, viz_hz=2, state_interval=5, advertise=name, manufacturer=name)
    await fleet.start()
    try:
        app = await start_bridge(
            discovery={
                "enabled": True,
                "interfaces": ["127.0.0.1"],
                "advertise": False,
                "auto_approve": [{"service_type": "_mqtt._tcp", "name": name}],
            }
        )
        await wait_for_state(app, f"fleet-{name}", DeviceState.ONLINE, timeout=20)
        await wait_for_state(app, "agv-001", DeviceState.ONLINE)
        await wait_for_state(app, "agv-002", DeviceState.ONLINE)
        assert app.registry.get("agv-001").description.vendor == name
    finally:
        await fleet.stop()
