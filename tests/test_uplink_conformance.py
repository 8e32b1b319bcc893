"""Sparkplug 3.0 publish rules as the broker saw them: Mosquitto runs with `log_type all`, and the tests
read the QoS and retain flag of every message the bridge published (and its will and subscriptions)
from the broker's own log, not from the bridge."""

from __future__ import annotations

import json
from pathlib import Path

from linebridge.drivers.sim.driver import LINKS_DOWN
from linebridge.uplink import UplinkState
from tests.conftest import BridgeFactory, sim_device
from tests.mqtt_broker import Broker, Consumer, uplink_section
from tests.sparkplug_decoder import encode_metric, encode_payload

GROUP, NODE = "linebridge", "test-bridge"
CLIENT = f"linebridge-{NODE}"


async def test_the_broker_logs_qos0_retain_false_for_data_births_ddeath_and_qos1_for_the_will(
    broker: Broker, consumer: Consumer, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    await consumer.publish("spBv1.0/STATE/scada", json.dumps({"online": True, "timestamp": 1}).encode(), True)
    app = await start_bridge(
        [sim_device("sim-1", rate_hz=50, signals=2)],
        uplink=uplink_section(broker, tmp_path / "o.sqlite", primary_host_id="scada"),
    )
    await consumer.wait_for(lambda: consumer.of("DDATA", device="sim-1"), what="DDATA")
    LINKS_DOWN.add("sim-1")
    try:
        await consumer.wait_for(lambda: consumer.of("DDEATH", NODE, "sim-1"), what="DDEATH")
    finally:
        LINKS_DOWN.discard("sim-1")
    await consumer.publish(
        f"spBv1.0/{GROUP}/NCMD/{NODE}",
        encode_payload([encode_metric(name="Node Control/Rebirth", datatype="Boolean", value=True)]),
    )
    await consumer.wait_for(lambda: len(consumer.of("NBIRTH", NODE)) == 2, what="rebirth")
    await app.stop()
    await consumer.wait_for(lambda: consumer.of("NDEATH", NODE), what="NDEATH")

    logged = [m for m in broker.published(CLIENT) if m.topic.startswith("spBv1.0/")]
    verbs = {m.verb for m in logged}
    assert {"NBIRTH", "DBIRTH", "DDATA", "DDEATH", "NDEATH"} <= verbs
    for message in logged:
        if message.verb == "NDEATH":
            # tck-id-payloads-ndeath-will-message-qos / -retain, and the intentional NDEATH
            assert (message.qos, message.retain) == (1, False), message
        else:
            # tck-id-topics-{nbirth,dbirth,ndata,ddata,ddeath}-mqtt: QoS 0, retain false
            assert (message.qos, message.retain) == (0, False), message
    assert [m for m in logged if m.will and m.verb == "NDEATH"]  # the will was registered
    # tck-id-message-flow-edge-node-ncmd-subscribe, -device-dcmd-subscribe, tck-id-payloads-state-subscribe
    assert broker.subscriptions(CLIENT) == {
        f"spBv1.0/{GROUP}/NCMD/{NODE}": 1,
        f"spBv1.0/{GROUP}/DCMD/{NODE}/+": 1,
        "spBv1.0/STATE/scada": 1,
    }
    log = broker.log.read_text()
    assert (
        f"as {CLIENT} (p2, c1, k5)" in log
    )  # MQTT 3.1.1, clean session (tck-id-principles-persistence-clean-session-311)
    assert consumer.errors == []


async def test_data_qos_1_is_the_documented_exception(
    broker: Broker, consumer: Consumer, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    await start_bridge(
        [sim_device("sim-1", rate_hz=50, signals=2)],
        uplink=uplink_section(broker, tmp_path / "o.sqlite", data_qos=1),
    )
    await consumer.wait_for(lambda: len(consumer.of("DDATA", device="sim-1")) > 3, what="DDATA")
    logged = [m for m in broker.published(CLIENT) if m.topic.startswith("spBv1.0/")]
    assert {(m.qos, m.retain) for m in logged if m.verb == "DDATA"} == {(1, False)}
    assert {(m.qos, m.retain) for m in logged if m.verb in ("NBIRTH", "DBIRTH")} == {(0, False)}


async def test_mqtt5_end_to_end(
    broker: Broker, consumer: Consumer, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    app = await start_bridge(
        [sim_device("sim-1", rate_hz=50, signals=2)],
        uplink=uplink_section(broker, tmp_path / "o.sqlite", protocol=5),
    )
    await consumer.wait_for(lambda: len(consumer.samples) > 10, what="samples over MQTT 5")
    assert app.uplink is not None and app.uplink.status().state is UplinkState.ONLINE
    # tck-id-principles-persistence-clean-session-50: Clean Start (c1); Session Expiry 0 is sent explicitly
    assert f"as {CLIENT} (p5, c1, k5)" in broker.log.read_text()
    logged = [m for m in broker.published(CLIENT) if m.topic.startswith("spBv1.0/")]
    assert {(m.qos, m.retain) for m in logged if not m.will} == {(0, False)}
    assert consumer.errors == []


async def test_bdseq_counts_connect_packets_not_failed_tcp_attempts(
    broker: Broker, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    """tck-id-topics-nbirth-bdseq-increment: bdSeq goes up by one per MQTT CONNECT packet sent."""
    await broker.stop()  # nothing listens: TCP connects fail, no CONNECT goes out
    app = await start_bridge(
        [sim_device("sim-1", rate_hz=10, signals=1)], uplink=uplink_section(broker, tmp_path / "o.sqlite")
    )
    uplink = app.uplink
    assert uplink is not None
    consumer = Consumer(broker.port, "late")
    await consumer.wait_for(lambda: uplink.node.attempts >= 4, what="four failed attempts")
    assert uplink.node.connects == 0 and uplink.node.bdseq == 255  # unchanged: the first CONNECT will use 0
    await broker.start()
    await consumer.start()
    await consumer.wait_for(lambda: uplink.status().state is UplinkState.ONLINE, what="online")
    await consumer.publish(
        f"spBv1.0/{GROUP}/NCMD/{NODE}",
        encode_payload([encode_metric(name="Node Control/Rebirth", datatype="Boolean", value=True)]),
    )
    await consumer.wait_for(lambda: consumer.of("NBIRTH", NODE), what="NBIRTH")
    (bdseq,) = [m.value() for m in consumer.of("NBIRTH", NODE)[0].payload.metrics if m.name == "bdSeq"]  # type: ignore[union-attr]
    assert bdseq == 0
    await consumer.stop()
