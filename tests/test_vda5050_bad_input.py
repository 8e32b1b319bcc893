"""Bad VDA 5050 input: each kind is counted, logged once, leaves the AGV's values, and never stops the driver."""

from __future__ import annotations

import json
import logging

import aiomqtt
import msgspec
import pytest

from linebridge.drivers.vda5050.link import parse_endpoint
from linebridge.drivers.vda5050.sim_agv import SimAgv
from linebridge.drivers.vda5050.sim_model import AgvConfig, AgvModel
from linebridge.model import DeviceState
from tests.conftest import BridgeFactory, wait_for_state
from tests.mqtt_broker import Broker
from tests.vda5050_helpers import MANUFACTURER, fleet_device, until, value

TOPIC = f"uagv/v2/{MANUFACTURER}/agv-001/state"


def good_state(broker: Broker, header_id: int, battery: float = 5.0) -> dict[str, object]:
    """A valid state of agv-001 (as JSON-ready dict) whose battery is an unmistakable value."""
    agv = SimAgv(AgvConfig("agv-001", manufacturer=MANUFACTURER), parse_endpoint(broker.url))
    state = msgspec.to_builtins(agv.state())
    state["headerId"] = header_id
    state["batteryState"]["batteryCharge"] = battery
    return state


def _without(d: dict[str, object], key: str) -> dict[str, object]:
    return {k: v for k, v in d.items() if k != key}


CASES = [
    ("malformed_json", TOPIC, lambda s: b'{"headerId": 9999999, "batteryState": {'),
    ("wrong_version", TOPIC, lambda s: json.dumps({**s, "version": "3.0.0"}).encode()),
    ("schema", TOPIC, lambda s: json.dumps(_without(s, "safetyState")).encode()),  # missing mandatory field
    ("schema", TOPIC, lambda s: json.dumps({**s, "batteryFlavour": "lemon"}).encode()),  # unknown field
    ("stale_state", TOPIC, lambda s: json.dumps({**s, "headerId": 0}).encode()),  # older than the last seen
    (
        "bad_serial",
        f"uagv/v2/{MANUFACTURER}/agv$1/state",
        lambda s: json.dumps({**s, "serialNumber": "agv$1"}).encode(),
    ),
    ("bad_serial", TOPIC, lambda s: json.dumps({**s, "serialNumber": "agv/001"}).encode()),
    ("oversize", TOPIC, lambda s: b" " * (10 * 1024 * 1024) + json.dumps(s).encode()),  # a 10 MB message
]


@pytest.mark.parametrize(("kind", "topic", "payload"), CASES)
async def test_bad_input_is_counted_once_logged_and_keeps_previous_values(
    broker: Broker, fleet, start_bridge: BridgeFactory, caplog: pytest.LogCaptureFixture, kind, topic, payload
) -> None:
    app = await start_bridge([fleet_device(broker)])
    await wait_for_state(app, "agv-001", DeviceState.ONLINE)
    await until(lambda: value(app, "agv-001", "battery/charge") == 100.0, what="a first good state")
    driver = app.sessions["fleet"].driver
    state = good_state(broker, header_id=10**6)
    caplog.set_level(logging.WARNING, logger="linebridge.drivers.vda5050.driver")
    async with aiomqtt.Client("127.0.0.1", broker.port) as c:
        for _ in range(2):  # the second time only counts
            await c.publish(topic, payload(state), qos=1)
    await until(lambda: driver.bad[kind] >= 2, what=f"two {kind} messages counted")
    assert value(app, "agv-001", "battery/charge") == 100.0  # the bad message's 5.0 was never applied
    logged = [r for r in caplog.records if f"({kind})" in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in caplog.records]
    assert app.registry.get("agv-001").state is DeviceState.ONLINE
    await until(lambda: value(app, "fleet", f"bad/{kind}") == 2, what=f"bad/{kind} signal")
    # The driver goes on: a good, newer state is applied.
    async with aiomqtt.Client("127.0.0.1", broker.port) as c:
        await c.publish(
            TOPIC, json.dumps(good_state(broker, header_id=2 * 10**6, battery=42.0)).encode(), qos=1
        )
    await until(lambda: value(app, "agv-001", "battery/charge") == 42.0, what="the next good state")


def test_the_model_alone_rejects_a_lower_order_update_and_ignores_a_repeat() -> None:
    from linebridge.drivers.vda5050.stations import route_order

    agv = AgvModel(AgvConfig("agv-x", node_id="goods-in"))
    agv.on_order(
        route_order(MANUFACTURER, "agv-x", "o", ["goods-in", "body-shop", "paint"], update_id=3, released=2)
    )
    assert agv.w.order_update_id == 3 and not agv.w.errors
    agv.on_order(
        route_order(MANUFACTURER, "agv-x", "o", ["goods-in", "body-shop", "paint"], update_id=3, released=2)
    )
    assert not agv.w.errors  # §6.6.4.3: the same orderUpdateId again is ignored
    agv.on_order(
        route_order(MANUFACTURER, "agv-x", "o", ["body-shop", "paint"], update_id=2, first_sequence=2)
    )
    assert [e.error_type for e in agv.w.errors] == ["orderUpdateError"]
    assert agv.w.order_update_id == 3  # kept the previous order
    agv.on_order(
        route_order(MANUFACTURER, "agv-x", "o", ["body-shop", "paint"], update_id=4, first_sequence=2)
    )
    assert agv.w.order_update_id == 4 and not agv.w.errors  # stitched on body-shop; the warning is cleared
    assert [n.node_id for n in agv.w.nodes] == ["body-shop", "paint"]
