"""The vda5050 driver against the protocol-true fleet simulator, through a real Mosquitto."""

from __future__ import annotations

import pytest

from linebridge.errors import InvalidArgument
from linebridge.model import DeviceKind, DeviceState
from tests.conftest import BridgeFactory, wait_for_state
from tests.mqtt_broker import Broker
from tests.vda5050_helpers import (
    finished,
    fleet_device,
    instant_spec,
    order_json,
    order_spec,
    until,
    value,
)


async def test_each_agv_becomes_a_device_with_factsheet_and_telemetry(
    broker: Broker, fleet, start_bridge: BridgeFactory
) -> None:
    app = await start_bridge([fleet_device(broker)])
    for serial in ("agv-001", "agv-002", "agv-003"):
        await wait_for_state(app, serial, DeviceState.ONLINE)
    record = app.registry.get("agv-002")
    assert record.description is not None
    assert record.description.kind is DeviceKind.AGV
    # ONLINE comes with the retained connection message; the retained factsheet follows it.
    await until(lambda: record.description.model == "LB-Tugger", what="the model from the factsheet")
    assert record.source == "gateway"
    await until(lambda: value(app, "agv-002", "battery/charge") == 100.0, what="a state of agv-002")
    assert value(app, "agv-002", "position/x") == 24.0  # agv-002 starts at the body shop
    assert value(app, "agv-002", "position/map_id") == "plant"
    await until(lambda: value(app, "fleet", "agvs_online") == 3, what="the fleet's online count")


async def test_an_order_ends_when_the_agv_has_driven_it_and_loads_carry_their_ids(
    broker: Broker, fleet, start_bridge: BridgeFactory
) -> None:
    app = await start_bridge([fleet_device(broker)])
    await wait_for_state(app, "agv-001", DeviceState.ONLINE)
    from linebridge.drivers.vda5050.stations import load_action

    text = order_json(
        "agv-001",
        "o-1",
        ["goods-in", "body-shop"],
        actions={0: [load_action("pick", "p1", "BODY-17")]},
    )
    record, _ = app.commands.submit(order_spec("agv-001", text))
    await until(lambda: value(app, "agv-001", "load/id") == "BODY-17", what="the picked load")
    await finished(record)
    assert record.state.name == "SUCCEEDED", record.error_message
    assert value(app, "agv-001", "position/x") == 24.0
    assert value(app, "agv-001", "order/last_node_id") == "body-shop"
    assert value(app, "agv-001", "battery/charge") < 100.0  # drained by 24 m of driving


@pytest.mark.parametrize(
    ("mutate", "rule"),
    [
        (lambda o: o["edges"].pop(), "edge_count"),
        (lambda o: o["nodes"][1].update(sequenceId=3), "sequence_id"),
        (lambda o: o["edges"][0].update(startNodeId="paint"), "edge_nodes"),
        (lambda o: o["nodes"][1].update(released=False), "edge_release"),
    ],
)
async def test_an_order_breaking_section_6_6_is_refused_before_anything_is_sent(
    broker: Broker, fleet, start_bridge: BridgeFactory, mutate, rule: str
) -> None:
    import json

    app = await start_bridge([fleet_device(broker)])
    await wait_for_state(app, "agv-001", DeviceState.ONLINE)
    body = json.loads(order_json("agv-001", "bad", ["goods-in", "body-shop"]))
    mutate(body)
    with pytest.raises(InvalidArgument, match=rule):
        app.commands.submit(order_spec("agv-001", json.dumps(body)))
    agv = fleet.by_serial("agv-001")
    assert agv.w.order_id == "" and not agv.w.errors  # the AGV never saw it


async def test_a_lower_order_update_id_is_refused_and_an_agv_error_fails_the_order_with_its_words(
    broker: Broker, fleet, start_bridge: BridgeFactory
) -> None:
    app = await start_bridge([fleet_device(broker)])
    await wait_for_state(app, "agv-003", DeviceState.ONLINE)
    path = ["paint", "goods-out", "goods-in"]  # agv-003 starts at paint
    record, _ = app.commands.submit(order_spec("agv-003", order_json("agv-003", "o-3", path, update_id=2)))
    await until(lambda: value(app, "agv-003", "order/id") == "o-3", what="the order in the AGV's state")
    with pytest.raises(InvalidArgument, match="update_id_increases"):
        app.commands.submit(order_spec("agv-003", order_json("agv-003", "o-3", path, update_id=1)))
    raise_error = [
        {
            "actionType": "simRaiseError",
            "actionParameters": [
                {"key": "errorType", "value": "wheelSlip"},
                {"key": "errorDescription", "value": "left wheel slipping"},
            ],
        }
    ]
    raised, _ = app.commands.submit(instant_spec("agv-003", raise_error))  # beside the running order
    assert (await finished(raised, timeout=10)).state.name == "SUCCEEDED", raised.error_message
    await finished(record)
    assert record.state.name == "FAILED"
    assert "wheelSlip: left wheel slipping" in record.error_message


async def test_stop_cancels_the_order_and_pauses(broker: Broker, fleet, start_bridge: BridgeFactory) -> None:
    from linebridge.commands.manager import CommandSpec
    from linebridge.model import CommandKind

    app = await start_bridge([fleet_device(broker)])
    await wait_for_state(app, "agv-001", DeviceState.ONLINE)
    record, _ = app.commands.submit(
        order_spec("agv-001", order_json("agv-001", "o-s", ["goods-in", "body-shop"]))
    )
    await until(lambda: value(app, "agv-001", "driving") is True, what="the AGV driving")
    stop, _ = app.commands.submit(CommandSpec("agv-001", CommandKind.STOP, timeout=10))
    await finished(stop)
    assert stop.state.name == "SUCCEEDED", stop.error_message
    await finished(record)
    assert record.state.name in ("FAILED", "CANCELLED")  # cancelled by the AGV, or preempted by Stop
    await until(lambda: value(app, "agv-001", "paused") is True, what="paused in the state")
    assert value(app, "agv-001", "order/nodes_left") == 0


async def test_an_agv_dropping_its_connection_goes_offline_by_last_will_and_comes_back(
    broker: Broker, fleet, start_bridge: BridgeFactory
) -> None:
    app = await start_bridge([fleet_device(broker)])
    await wait_for_state(app, "agv-002", DeviceState.ONLINE)
    await until(lambda: app.driver_of("agv-002").factsheet, what="the factsheet declaring simDropConnection")
    app.commands.submit(instant_spec("agv-002", [{"actionType": "simDropConnection"}]))
    await wait_for_state(app, "agv-002", DeviceState.OFFLINE)
    assert "CONNECTIONBROKEN" in app.registry.get("agv-002").state_reason
    await wait_for_state(app, "agv-002", DeviceState.ONLINE)


async def test_an_instant_action_the_agv_does_not_know_is_refused(
    broker: Broker, fleet, start_bridge: BridgeFactory
) -> None:
    app = await start_bridge([fleet_device(broker)])
    await wait_for_state(app, "agv-001", DeviceState.ONLINE)
    await until(lambda: fleet.by_serial("agv-001").connections and app.driver_of("agv-001").factsheet)
    with pytest.raises(InvalidArgument, match="neither predefined"):
        app.commands.submit(instant_spec("agv-001", [{"actionType": "fly"}]))
    with pytest.raises(InvalidArgument, match="neither predefined"):  # declared, but for nodes only
        app.commands.submit(instant_spec("agv-001", [{"actionType": "pick"}]))
    record, _ = app.commands.submit(instant_spec("agv-001", [{"actionType": "cancelOrder"}]))
    await finished(record)
    assert record.state.name == "FAILED"
    assert "noOrderToCancel" in record.error_message  # §6.6.3.2, in the AGV's words


async def test_a_new_agv_device_asks_for_a_state_instead_of_waiting_up_to_30_s(
    broker: Broker, start_bridge: BridgeFactory
) -> None:
    from linebridge.drivers.vda5050.simulator import AgvFleet

    quiet = AgvFleet(broker.url, 1, viz_hz=0, state_interval=30)  # no visualization, states 30 s apart
    await quiet.start()
    try:
        await until(lambda: quiet.agvs[0]._ids.get("state") == 0, what="the first state, before the bridge")
        app = await start_bridge([fleet_device(broker)])
        await wait_for_state(app, "agv-001", DeviceState.ONLINE)
        await until(
            lambda: value(app, "agv-001", "order/last_node_id") == "goods-in", timeout=5, what="a state"
        )
        assert quiet.agvs[0]._ids["state"] >= 1  # sent on the stateRequest
    finally:
        await quiet.stop()


async def test_the_broker_going_away_takes_the_agvs_offline_and_they_return_with_it(
    broker: Broker, fleet, start_bridge: BridgeFactory
) -> None:
    app = await start_bridge([fleet_device(broker)])
    await wait_for_state(app, "agv-001", DeviceState.ONLINE)
    await broker.stop()
    await wait_for_state(app, "fleet", DeviceState.OFFLINE)
    await wait_for_state(app, "agv-001", DeviceState.OFFLINE)
    # Mosquitto may hand the AGVs' last wills to the bridge before it closes the bridge's own connection.
    assert app.registry.get("agv-001").state_reason in (
        "fleet connection closed",
        "connection CONNECTIONBROKEN",
    )
    await broker.start()
    await wait_for_state(app, "fleet", DeviceState.ONLINE, timeout=20)
    await wait_for_state(app, "agv-001", DeviceState.ONLINE, timeout=20)


async def test_instant_actions_pause_and_resume_a_running_order(
    broker: Broker, fleet, start_bridge: BridgeFactory
) -> None:
    app = await start_bridge([fleet_device(broker)])
    await wait_for_state(app, "agv-001", DeviceState.ONLINE)
    order, _ = app.commands.submit(
        order_spec("agv-001", order_json("agv-001", "o-p", ["goods-in", "body-shop"]))
    )
    await until(lambda: value(app, "agv-001", "driving") is True, what="driving")
    pause, _ = app.commands.submit(instant_spec("agv-001", [{"actionType": "startPause"}]))
    assert (await finished(pause, timeout=10)).state.name == "SUCCEEDED", pause.error_message
    await until(lambda: value(app, "agv-001", "driving") is False, what="stopped by the pause")
    x = value(app, "agv-001", "position/x")
    assert 0.0 < x < 24.0 and not order.state.final  # paused half-way; the order still runs
    resume, _ = app.commands.submit(instant_spec("agv-001", [{"actionType": "stopPause"}]))
    assert (await finished(resume, timeout=10)).state.name == "SUCCEEDED"
    assert (await finished(order)).state.name == "SUCCEEDED", order.error_message
