"""The bridge as a Sparkplug B edge node, seen by a consumer on a real Mosquitto broker.

Every payload the consumer receives is decoded by tests/sparkplug_decoder.py and checked as it arrives
(births before data, aliases only in DATA, datatypes, seq continuity); the tests then look at the flow.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from linebridge.app import BridgeApp
from linebridge.drivers.sim.driver import LINKS_DOWN
from linebridge.model import DeviceState, SampleBatch, Signal, ValueType
from linebridge.uplink import UplinkState
from tests.conftest import BridgeFactory, sim_device, wait_for_state
from tests.mqtt_broker import Broker, Consumer, uplink_section
from tests.sparkplug_decoder import Payload, encode_metric, encode_payload

GROUP, NODE = "linebridge", "test-bridge"
DATATYPE_OF = {"setpoint": 10, "enabled": 11, "label": 12, "counter": 4}


def metric_value(payload: Payload, name: str) -> object:
    (metric,) = [m for m in payload.metrics if m.name == name]
    return metric.value()


async def test_birth_data_death_sequence_with_seq_and_bdseq(
    broker: Broker, consumer: Consumer, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    app = await start_bridge(
        [sim_device("sim-1", rate_hz=50, signals=3)], uplink=uplink_section(broker, tmp_path / "o.sqlite")
    )
    await consumer.wait_for(lambda: consumer.of("DDATA", device="sim-1"), what="DDATA")
    (nbirth,) = consumer.of("NBIRTH", NODE)
    assert nbirth.topic == f"spBv1.0/{GROUP}/NBIRTH/{NODE}" and nbirth.payload.seq == 0  # type: ignore[union-attr]
    bdseq = metric_value(nbirth.payload, "bdSeq")  # type: ignore[arg-type]
    assert metric_value(nbirth.payload, "Node Control/Rebirth") is False  # type: ignore[arg-type]
    (dbirth,) = consumer.of("DBIRTH", NODE, "sim-1")
    births = {m.name: m for m in dbirth.payload.metrics}  # type: ignore[union-attr]
    assert set(births) == {"values/0", "values/1", "values/2", *DATATYPE_OF}
    assert {n: births[n].datatype for n in DATATYPE_OF} == DATATYPE_OF
    metrics = dbirth.payload.metrics + nbirth.payload.metrics  # type: ignore[union-attr]
    aliases = [m.alias for m in metrics if m.alias is not None]
    # unique across the whole edge node: the device metrics and three of the node (Node Control/Rebirth,
    # Properties/Linebridge Version, Audit/Head)
    assert len(aliases) == len(set(aliases)) == len(births) + 3

    LINKS_DOWN.add("sim-1")
    try:
        await consumer.wait_for(lambda: consumer.of("DDEATH", NODE, "sim-1"), what="DDEATH")
    finally:
        LINKS_DOWN.discard("sim-1")
    await consumer.wait_for(lambda: len(consumer.of("DBIRTH", NODE, "sim-1")) == 2, what="second DBIRTH")
    reborn = len(consumer.messages)
    await consumer.wait_for(
        lambda: any(m.verb == "DDATA" for m in consumer.messages[reborn:]), what="data again"
    )

    await consumer.publish(
        f"spBv1.0/{GROUP}/NCMD/{NODE}",
        encode_payload([encode_metric(name="Node Control/Rebirth", datatype="Boolean", value=True)]),
    )
    await consumer.wait_for(lambda: len(consumer.of("NBIRTH", NODE)) == 2, what="rebirth")
    await consumer.wait_for(
        lambda: len(consumer.of("DBIRTH", NODE, "sim-1")) == 3, what="DBIRTH after rebirth"
    )
    second = consumer.of("NBIRTH", NODE)[1].payload
    assert second.seq == 0 and metric_value(second, "bdSeq") == bdseq  # type: ignore[union-attr,arg-type]

    await app.stop()
    await consumer.wait_for(lambda: consumer.of("NDEATH", NODE), what="NDEATH")
    (ndeath,) = consumer.of("NDEATH", NODE)
    assert ndeath.payload.seq is None and metric_value(ndeath.payload, "bdSeq") == bdseq  # type: ignore[union-attr,arg-type]
    assert consumer.errors == []
    assert app.uplink is not None and app.uplink.status().commands_accepted == 1


async def test_seq_wraps_from_255_to_0(
    broker: Broker,
    consumer: Consumer,
    start_bridge: BridgeFactory,
    tmp_path: Path,
) -> None:
    await start_bridge(
        [sim_device("sim-1", rate_hz=1000, signals=1)],
        uplink=uplink_section(
            broker, tmp_path / "o.sqlite", max_publish_rate=5000, max_latency_seconds=0.002
        ),
    )
    await consumer.wait_for(lambda: len(consumer.of("DDATA")) > 300, what="300 DDATA", timeout=30)
    seqs = [m.payload.seq for m in consumer.messages if m.payload is not None and m.verb != "NDEATH"]
    assert any(a == 255 and b == 0 for a, b in zip(seqs, seqs[1:], strict=False))
    assert consumer.errors == []


async def test_every_value_type_round_trips_with_its_alias_and_datatype(
    broker: Broker, consumer: Consumer, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    app = await start_bridge(
        [sim_device("sim-1", rate_hz=1, signals=1)], uplink=uplink_section(broker, tmp_path / "o.sqlite")
    )
    await consumer.wait_for(lambda: consumer.of("DBIRTH", device="sim-1"), what="DBIRTH")
    record = app.registry.get("sim-1")
    now = time.time_ns()
    written = {"setpoint": -12.625, "enabled": True, "label": "Zelle 3 / 東京", "counter": -(2**62) - 7}
    for offset, (name, value) in enumerate(written.items()):
        signal = record.signals[name]
        app.bus.publish(SampleBatch("sim-1", [signal.alias], [value], [now + offset * 10**6]))
    app.bus.publish(
        SampleBatch("sim-1", [record.signals["counter"].alias], [5], [now + 10**7], qualities=[3])
    )
    await consumer.wait_for(lambda: {s.name for s in consumer.samples} >= set(written), what="all four types")
    received = {
        s.name: s.value
        for s in consumer.samples
        if s.name in written and s.timestamp < (now + 10**7) // 10**6
    }
    assert received == written
    bad = [m for m in consumer.of("DDATA", device="sim-1") for x in m.payload.metrics if x.properties]  # type: ignore[union-attr]
    assert bad and bad[0].payload.metrics[-1].properties == {"Quality": 0}  # type: ignore[union-attr]

    await consumer.publish(
        f"spBv1.0/{GROUP}/NCMD/{NODE}",
        encode_payload([encode_metric(name="Node Control/Rebirth", datatype="Boolean", value=True)]),
    )
    await consumer.wait_for(lambda: len(consumer.of("DBIRTH", device="sim-1")) == 2, what="rebirth")
    birth = consumer.of("DBIRTH", device="sim-1")[1].payload
    assert {n: metric_value(birth, n) for n in written} == written | {"counter": 5}  # type: ignore[arg-type]
    assert consumer.errors == []


async def test_a_device_with_new_signals_is_born_again(
    broker: Broker, consumer: Consumer, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    app = await start_bridge(
        [sim_device("sim-1", rate_hz=20, signals=1)], uplink=uplink_section(broker, tmp_path / "o.sqlite")
    )
    await consumer.wait_for(lambda: consumer.of("DDATA", device="sim-1"), what="DDATA")
    description = app.registry.get("sim-1").description
    assert description is not None
    description.signals = [*description.signals, Signal("temperature", ValueType.DOUBLE, unit="degC")]
    app.registry.set_description("sim-1", description)  # what a session does after a firmware update
    await consumer.wait_for(lambda: len(consumer.of("DBIRTH", device="sim-1")) == 2, what="new DBIRTH")
    names = {m.name for m in consumer.of("DBIRTH", device="sim-1")[1].payload.metrics}  # type: ignore[union-attr]
    assert "temperature" in names
    app.bus.publish(
        SampleBatch(
            "sim-1", [app.registry.get("sim-1").signals["temperature"].alias], [21.5], [time.time_ns()]
        )
    )
    await consumer.wait_for(
        lambda: any(s.name == "temperature" for s in consumer.samples), what="temperature"
    )
    assert consumer.errors == []


def state(online: bool, stamp: int) -> bytes:
    return json.dumps({"online": online, "timestamp": stamp}).encode()


async def test_primary_host_offline_holds_and_online_resumes(
    broker: Broker, consumer: Consumer, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    topic = "spBv1.0/STATE/scada"
    await consumer.publish(topic, state(False, 1000), retain=True)
    app = await start_bridge(
        [sim_device("sim-1", rate_hz=200, signals=2)],
        uplink=uplink_section(
            broker, tmp_path / "o.sqlite", primary_host_id="scada", report_by_exception=False
        ),
    )
    uplink = app.uplink
    assert uplink is not None
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    await consumer.wait_for(lambda: uplink.status().state is UplinkState.WAITING_FOR_HOST, what="waiting")
    await consumer.wait_for(lambda: uplink.status().backlog_samples > 200, what="a backlog while held")
    assert consumer.of("NBIRTH") == [] and consumer.of("DDATA") == []

    await consumer.publish(topic, state(True, 2000), retain=True)
    await consumer.wait_for(lambda: any(s.historical for s in consumer.samples), what="replayed history")
    await consumer.wait_for(lambda: any(not s.historical for s in consumer.samples), what="live data")
    assert uplink.status().state is UplinkState.ONLINE

    await consumer.publish(topic, state(True, 1500), retain=True)  # older than the last STATE: ignored
    await consumer.publish(topic, state(False, 3000), retain=True)
    await consumer.wait_for(lambda: consumer.of("NDEATH"), what="NDEATH when the host leaves")
    await consumer.wait_for(
        lambda: uplink.status().state is UplinkState.WAITING_FOR_HOST, what="holding again"
    )
    held = len(consumer.of("DDATA"))
    await consumer.wait_for(lambda: uplink.status().backlog_samples > 200, what="a second backlog")
    assert len(consumer.of("DDATA")) == held and len(consumer.of("NBIRTH")) == 1

    await consumer.publish(topic, state(True, 4000), retain=True)
    await consumer.wait_for(lambda: len(consumer.of("NBIRTH")) == 2, what="NBIRTH after the host returns")
    bdseqs = [metric_value(m.payload, "bdSeq") for m in consumer.of("NBIRTH")]  # type: ignore[arg-type]
    assert bdseqs[1] == (bdseqs[0] + 1) % 256  # type: ignore[operator]  (a new MQTT session)
    await consumer.wait_for(lambda: len(consumer.of("DDATA")) > held + 2, what="data after the host returns")
    assert consumer.errors == []


async def test_three_bridges_on_one_broker_one_consumer_sees_them_all(
    broker: Broker, consumer: Consumer, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    apps: list[BridgeApp] = []
    for n in range(1, 4):
        apps.append(
            await start_bridge(
                [sim_device("sim-1", rate_hz=20, signals=2), sim_device(f"cell-{n}", rate_hz=20, signals=1)],
                bridge={"id": f"line-{n}"},
                uplink=uplink_section(broker, tmp_path / f"o{n}.sqlite"),
            )
        )
    expected = {(f"line-{n}", device) for n in range(1, 4) for device in ("sim-1", f"cell-{n}")}
    await consumer.wait_for(
        lambda: {(s.node, s.device) for s in consumer.samples} >= expected, what="all devices"
    )
    assert {m.node for m in consumer.of("NBIRTH")} == {"line-1", "line-2", "line-3"}
    assert {(m.node, m.device) for m in consumer.of("DBIRTH")} == expected
    assert consumer.errors == []
