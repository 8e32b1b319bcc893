"""Issue #12, uplink halves of defects 3 and 7: no payload over `max_payload_bytes` and no reconnect loop
from one oversize value (against a real Mosquitto with a packet cap); reconnect backoff that starts
over only after a healthy connection; repeated log lines limited."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from linebridge.model import SampleBatch, ValueType
from linebridge.uplink.encoder import SparkplugEncoder
from linebridge.uplink.retry import RepeatLog, Retry
from tests.conftest import BridgeFactory, sim_device
from tests.mqtt_broker import Broker, Consumer, uplink_section
from tests.sparkplug_decoder import encode_metric, encode_payload

NODE = "test-bridge"


def test_a_value_too_big_for_any_payload_is_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="linebridge.uplink.encoder")
    encoder = SparkplugEncoder(4096)
    encoder.define(1, 11, ValueType.STRING)
    now = time.time_ns()
    batch = SampleBatch(
        "d", [1, 1, 1], ["small", "x" * 10_000, "after"], [now] * 3, value_type=ValueType.STRING
    )
    sealed = encoder.add(batch, historical=False) + encoder.seal_all()
    assert all(len(s.body) <= encoder.max_body for s in sealed)
    assert sum(s.samples for s in sealed) == 2 and encoder.oversized_samples == 1
    assert any("more than a whole payload" in r.getMessage() for r in caplog.records)


def test_a_birth_sends_a_value_too_big_as_null() -> None:
    encoder = SparkplugEncoder(4096)
    metrics = [("label", 1, ValueType.STRING, "x" * 10_000, 1), ("speed", 2, ValueType.DOUBLE, 1.5, 1)]
    body = encoder.birth_within(metrics, 1)
    assert body is not None and len(body) <= encoder.max_body and encoder.oversized_samples == 1
    assert encoder.birth_within([(f"m{i}", i, ValueType.BOOL, None, 1) for i in range(2000)], 1) is None


@pytest.mark.timeout(120)
async def test_an_8_mb_value_never_reaches_a_capped_broker_and_causes_no_reconnect_loop(
    tmp_path: Path, start_bridge: BridgeFactory
) -> None:
    broker = Broker(tmp_path, "max_packet_size 135000\n")  # the probe's broker: 135 KB packets at most
    await broker.start()
    consumer = Consumer(broker.port)
    await consumer.start()
    try:
        app = await start_bridge(
            [sim_device("sim-1", rate_hz=20, signals=1)], uplink=uplink_section(broker, tmp_path / "o.sqlite")
        )
        uplink = app.uplink
        assert uplink is not None
        await consumer.wait_for(lambda: consumer.of("DDATA", device="sim-1"), what="DDATA")
        label = app.registry.get("sim-1").signals["label"].alias
        app.bus.publish(
            SampleBatch("sim-1", [label], ["x" * 8_000_000], [time.time_ns()], value_type=ValueType.STRING)
        )
        await consumer.wait_for(lambda: uplink.status().oversized_samples == 1, what="the value dropped")
        await consumer.publish(  # a rebirth: the DBIRTH now carries the 8 MB current value
            f"spBv1.0/linebridge/NCMD/{NODE}",
            encode_payload([encode_metric(name="Node Control/Rebirth", datatype="Boolean", value=True)]),
        )
        await consumer.wait_for(lambda: len(consumer.of("DBIRTH", device="sim-1")) == 2, what="the DBIRTH")
        seen = len(consumer.messages)
        await consumer.wait_for(
            lambda: consumer.of("DDATA", device="sim-1")[-1] in consumer.messages[seen:], what="data after it"
        )
        birth = consumer.of("DBIRTH", device="sim-1")[1].payload
        assert birth is not None and [m.is_null for m in birth.metrics if m.name == "label"] == [True]
        status = uplink.status()
        assert status.connects == 1 and status.oversized_samples == 2  # never thrown out by the broker
        assert max(len(m.raw) for m in consumer.messages) <= 128 * 1024
        assert consumer.errors == []
    finally:
        await consumer.stop()
        await broker.stop()


def test_backoff_keeps_growing_while_connections_drop_quickly_and_starts_over_after_a_healthy_one() -> None:
    retry = Retry(initial=1.0, maximum=64.0, healthy=30.0)
    caps = []
    for attempt in range(6):  # connect, thrown out 2 s later, six times
        retry.connected(100.0 * attempt)
        caps.append(retry.failed(100.0 * attempt + 2))
    assert [c >= 2 ** (i - 1) for i, c in enumerate(caps)] == [True] * 6  # jitter: between cap/2 and cap
    assert caps[-1] >= 16
    retry.connected(1000.0)
    assert retry.failed(1031.0) <= 1.0  # up for 31 s: healthy, the backoff starts over


def test_repeated_log_lines_are_limited_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limited = RepeatLog(logging.getLogger("test.repeat"), every=60.0, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="test.repeat")
    for second in range(120):
        now[0] = float(second)
        limited.warning("uplink to %s unavailable: %s", "mqtt://x", "refused")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "uplink to mqtt://x unavailable: refused",
        "uplink to mqtt://x unavailable: refused (repeated 59 times)",
    ]
