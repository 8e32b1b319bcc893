"""The demo's logistics loop drives three simulated AGVs through the bridge, with real loads."""

from __future__ import annotations

import asyncio

from linebridge.cli.demo_logistics import fleet_config, leg, run_logistics, zones_config
from linebridge.drivers.vda5050 import messages as m
from linebridge.drivers.vda5050.order_rules import check_order
from tests.conftest import BridgeFactory
from tests.mqtt_broker import Broker


def test_a_leg_keeps_the_order_rules() -> None:
    import msgspec

    body = msgspec.json.decode(leg("o", "goods-in", "body-shop", pick="B", drop="B"))
    order = msgspec.convert(
        {
            **body,
            **{
                "headerId": 0,
                "timestamp": m.now(),
                "version": "2.0.0",
                "manufacturer": "x",
                "serialNumber": "y",
            },
        },
        m.Order,
    )
    check_order(order, None)


async def test_one_leg_per_agv_moves_bodies_between_stations(
    broker: Broker, fleet, start_bridge: BridgeFactory
) -> None:
    app = await start_bridge([fleet_config(broker.url)], transport=zones_config())
    await asyncio.wait_for(run_logistics(app, agvs=3, legs=1), 60)
    history = [r for r in app.commands.list(limit=50) if r.spec.method == "order"]
    assert len(history) == 3 and all(r.state.name == "SUCCEEDED" for r in history), [
        (r.spec.device_id, r.state.name, r.error_message) for r in history
    ]
    app.transport.check()
    body = app.transport.locate("BODY-001-1")  # agv-001 started at goods-in: picked a body, dropped it
    assert body.device_id == "agv-001" and not body.on_board and body.place.zones == ("body-shop",)
