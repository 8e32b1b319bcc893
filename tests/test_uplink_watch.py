"""`linebridge uplink watch` against traffic from an independent publisher: paho-mqtt, with payloads
built by the test's own encoder (tests/sparkplug_decoder.py), not by the bridge."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import paho.mqtt.client as paho

from tests.mqtt_broker import Broker
from tests.sparkplug_decoder import encode_metric, encode_payload

ROOT = Path(__file__).parent.parent


def metric(**kwargs: object) -> bytes:
    return encode_metric(**kwargs)  # type: ignore[arg-type]


def bdseq(value: int) -> bytes:
    return metric(name="bdSeq", datatype="Int64", value=value)


# What an edge node that gets several things wrong sends, in order: (topic, payload).
T = "spBv1.0/plant"
TRAFFIC = [
    (f"{T}/NDATA/edge-a", encode_payload([metric(alias=2, value=1.0, value_datatype="Double")], seq=5)),
    (
        f"{T}/NBIRTH/edge-a",
        encode_payload(
            [
                bdseq(3),
                metric(name="Node Control/Rebirth", alias=1, datatype="Boolean", value=False),
                metric(name="temp", alias=2, datatype="Double", value=1.5),
            ],
            seq=0,
        ),
    ),
    (
        f"{T}/DBIRTH/edge-a/dev1",
        encode_payload([metric(name="speed", alias=10, datatype="Double", value=0.0)], seq=1),
    ),
    (f"{T}/DDATA/edge-a/dev1", encode_payload([metric(alias=10, value=2.5, value_datatype="Double")], seq=2)),
    (f"{T}/DDATA/edge-a/dev1", encode_payload([metric(alias=11, value=9.0, value_datatype="Double")], seq=4)),
    (f"{T}/DDATA/edge-a/dev2", encode_payload([metric(alias=10, value=1.0, value_datatype="Double")], seq=5)),
    (f"{T}/DCMD/edge-a/dev1", encode_payload([metric(alias=10, value=3.0, value_datatype="Double")])),
    ("spBv1.0/other/NBIRTH/edge-b", encode_payload([bdseq(0)], seq=0)),  # another group: filtered out
    (f"{T}/NDEATH/edge-a", encode_payload([bdseq(2)])),  # an older session's will
    (f"{T}/DDEATH/edge-a/dev1", encode_payload([], seq=6)),
    ("spBv1.0/STATE/scada", json.dumps({"online": True, "timestamp": 1700000000000}).encode()),
    (f"{T}/NDEATH/edge-a", encode_payload([bdseq(3)])),
    (f"{T}/NDATA/edge-a", b"\xff\xff\xff"),
]
EXPECTED = len(TRAFFIC) - 1


async def watch(broker: Broker, topic_filter: str, *args: str) -> str:
    """Run `linebridge uplink watch` until it has subscribed, publish the traffic, return its output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "linebridge.cli",
        "uplink",
        "watch",
        broker.url,
        *args,
        "--seconds",
        "60",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        async with asyncio.timeout(20):
            while f"\t{topic_filter} (QoS 1)" not in broker.log.read_text(errors="replace"):
                assert process.returncode is None, "the watcher exited before subscribing"
                await asyncio.sleep(0.05)
        await asyncio.to_thread(publish_all, broker.port)
        async with asyncio.timeout(60):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    return out.decode()


def publish_all(port: int) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="independent-edge")
    client.connect("127.0.0.1", port, 30)
    client.loop_start()
    try:
        for topic, payload in TRAFFIC:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


async def test_watch_decodes_and_flags_another_nodes_traffic(broker: Broker) -> None:
    out = await watch(broker, "spBv1.0/plant/#", "--group", "plant", "--json", "--count", str(EXPECTED))
    seen = [json.loads(line) for line in out.splitlines()]
    assert len(seen) == EXPECTED
    assert not any(s.get("node") == "edge-b" for s in seen)
    by_verb = [(s["verb"], s.get("device", ""), s.get("flags", [])) for s in seen]
    assert by_verb[0] == ("NDATA", "", ["NDATA before its birth"])
    assert by_verb[1] == ("NBIRTH", "", []) and seen[1]["bdseq"] == 3
    assert by_verb[2] == ("DBIRTH", "dev1", [])
    assert by_verb[3] == ("DDATA", "dev1", []) and seen[3]["metrics"][0]["name"] == "speed"
    assert seen[3]["metrics"][0]["value"] == 2.5
    assert by_verb[4] == ("DDATA", "dev1", ["seq gap: expected 3, got 4", "unknown alias 11"])
    assert by_verb[5] == ("DDATA", "dev2", ["DDATA before its birth"])
    assert by_verb[6][0] == "DCMD" and seen[6]["metrics"][0] == {"alias": 10, "name": "speed", "value": 3.0}
    assert by_verb[7][0] == "NDEATH" and by_verb[7][2][0].startswith("bdSeq mismatch: NDEATH 2, NBIRTH 3")
    assert by_verb[8] == ("DDEATH", "dev1", ["device death"])
    assert seen[9]["verb"] == "STATE" and seen[9]["state"] == {"online": True, "timestamp": 1700000000000}
    assert by_verb[10] == ("NDEATH", "", ["node death"])
    assert by_verb[11] == ("NDATA", "", ["undecodable Sparkplug B payload"])


async def test_watch_table_mode_summarises_per_node_and_device(broker: Broker) -> None:
    out = await watch(broker, "spBv1.0/+/+/edge-a/#", "--node", "edge-a", "--count", "5")
    assert "! NDATA before its birth" in out and "! seq gap: expected 3, got 4" in out
    table = out[out.index("node/device") :].splitlines()
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["plant/edge-a/dev1"][1] == "online" and rows["plant/edge-a/dev1"][5] == "2"
