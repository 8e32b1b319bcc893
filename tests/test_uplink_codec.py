"""SparkplugEncoder, report-by-exception and topics, checked with the independent decoder (no broker)."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linebridge.model import Quality, SampleBatch, ValueType
from linebridge.telemetry.filters import ChangeFilter
from linebridge.uplink.encoder import TRAILER_RESERVE, SparkplugEncoder, trailer
from linebridge.uplink.topics import Topics
from tests import sparkplug_decoder as spd

NOW = time.time_ns()
TYPES = {
    ValueType.DOUBLE: "Double",
    ValueType.INT: "Int64",
    ValueType.BOOL: "Boolean",
    ValueType.STRING: "String",
}


def encoder_with(types: dict[int, ValueType], max_payload: int = 128 * 1024) -> SparkplugEncoder:
    encoder = SparkplugEncoder(max_payload)
    for alias, value_type in types.items():
        encoder.define(alias, alias + 100, value_type)  # Sparkplug alias = registry alias + 100
    return encoder


def decoded(encoder: SparkplugEncoder, batch: SampleBatch, historical: bool = False) -> list[spd.Payload]:
    bodies = [s.body for s in encoder.add(batch, historical)]
    last = encoder.seal(batch.device_id)
    bodies += [last.body] if last is not None else []
    return [spd.decode(body + trailer(123, 7)) for body in bodies]


def test_double_batches_take_the_fast_path_and_decode_with_the_spec_decoder() -> None:
    encoder = encoder_with({1: ValueType.DOUBLE, 2: ValueType.DOUBLE})
    batch = SampleBatch(
        "d",
        [1, 2, 1, 2],
        [0.5, -1.25, math.pi, 1e300],
        [NOW, NOW, NOW + 10**6, NOW + 10**6],
        value_type=ValueType.DOUBLE,
    )
    (payload,) = decoded(encoder, batch)
    assert payload.timestamp == 123 and payload.seq == 7
    assert [(m.alias, m.timestamp, m.value(10)) for m in payload.metrics] == [
        (101, NOW // 10**6, 0.5),
        (102, NOW // 10**6, -1.25),
        (101, NOW // 10**6 + 1, math.pi),
        (102, NOW // 10**6 + 1, 1e300),
    ]
    assert all(m.name is None and not m.is_historical and m.datatype is None for m in payload.metrics)


@pytest.mark.parametrize("historical", [False, True])
def test_every_value_type_round_trips_with_alias_and_quality(historical: bool) -> None:
    types = {1: ValueType.DOUBLE, 2: ValueType.INT, 3: ValueType.BOOL, 4: ValueType.STRING}
    encoder = encoder_with(types)
    values = [2.5, -(2**63), True, "grüße / 東京"]
    batch = SampleBatch("d", [1, 2, 3, 4], values, [NOW] * 4, qualities=[1, 3, 2, 1])
    (payload,) = decoded(encoder, batch, historical)
    for metric, alias, value in zip(payload.metrics, [1, 2, 3, 4], values, strict=True):
        assert metric.alias == alias + 100
        assert metric.value(spd.DATATYPE_ID[TYPES[types[alias]]]) == value
        assert metric.is_historical is historical
    assert [m.properties.get("Quality") for m in payload.metrics] == [None, 0, 500, None]


def test_bool_fast_path_and_historical_flag() -> None:
    encoder = encoder_with({5: ValueType.BOOL})
    batch = SampleBatch("d", [5, 5, 5], [True, False, True], [NOW] * 3, value_type=ValueType.BOOL)
    (payload,) = decoded(encoder, batch, historical=True)
    assert [m.value(11) for m in payload.metrics] == [True, False, True]
    assert all(m.is_historical for m in payload.metrics)


def test_payloads_respect_the_size_cap_and_keep_every_sample_in_order() -> None:
    encoder = encoder_with(
        {a: ValueType.DOUBLE for a in range(1, 51)} | {99: ValueType.STRING}, max_payload=2048
    )
    n = 50 * 40
    batch = SampleBatch(
        "d", list(range(1, 51)) * 40, [float(i) for i in range(n)], [NOW] * n, value_type=ValueType.DOUBLE
    )
    strings = SampleBatch("d", [99] * 30, ["x" * 90] * 30, [NOW] * 30)
    payloads = decoded(encoder, batch) + decoded(encoder, strings)
    assert len(payloads) > 10
    received = [m.value(10) for p in payloads for m in p.metrics if m.alias != 199]
    assert received == [float(i) for i in range(n)]
    assert sum(1 for p in payloads for m in p.metrics if m.alias == 199) == 30
    for body in _bodies(encoder_with({a: ValueType.DOUBLE for a in range(1, 51)}, 2048), batch):
        assert len(body) + TRAILER_RESERVE <= 2048


def _bodies(encoder: SparkplugEncoder, batch: SampleBatch) -> list[bytes]:
    out = [s.body for s in encoder.add(batch, False)]
    last = encoder.seal(batch.device_id)
    return out + ([last.body] if last else [])


def test_a_change_of_live_to_historical_seals_the_open_body() -> None:
    encoder = encoder_with({1: ValueType.DOUBLE})
    live = SampleBatch("d", [1], [1.0], [NOW], value_type=ValueType.DOUBLE)
    assert encoder.add(live, False) == []
    sealed = encoder.add(live, True)
    assert len(sealed) == 1 and not sealed[0].historical and sealed[0].samples == 1
    rest = encoder.seal("d")
    assert rest is not None and rest.historical


def test_as_historical_flags_every_metric_of_a_live_body() -> None:
    encoder = encoder_with({1: ValueType.DOUBLE, 2: ValueType.STRING})
    encoder.add(SampleBatch("d", [1, 2], [1.0, "a"], [NOW] * 2), False)
    sealed = encoder.seal("d")
    assert sealed is not None
    payload = spd.decode(SparkplugEncoder.as_historical(sealed.body))
    assert [m.is_historical for m in payload.metrics] == [True, True]
    assert [m.value(t) for m, t in zip(payload.metrics, (10, 12), strict=True)] == [1.0, "a"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=False), st.integers(-(2**63), 2**63 - 1), st.booleans(), st.text(max_size=20)
        ),
        min_size=1,
        max_size=40,
    )
)
def test_any_values_round_trip(values: list[object]) -> None:
    kinds = [
        ValueType.BOOL
        if isinstance(v, bool)
        else ValueType.INT
        if isinstance(v, int)
        else ValueType.DOUBLE
        if isinstance(v, float)
        else ValueType.STRING
        for v in values
    ]
    encoder = encoder_with({i + 1: kind for i, kind in enumerate(kinds)}, max_payload=1024)
    batch = SampleBatch("d", list(range(1, len(values) + 1)), list(values), [NOW] * len(values))  # type: ignore[arg-type]
    metrics = [m for p in decoded(encoder, batch) for m in p.metrics]
    assert [m.value(spd.DATATYPE_ID[TYPES[kinds[m.alias - 101]]]) for m in metrics] == values


def test_birth_and_death_bodies() -> None:
    body = SparkplugEncoder.birth(
        [("a/b", 7, ValueType.INT, -3, 1000), ("c", 8, ValueType.STRING, None, 0)], 2000
    )
    payload = spd.decode(body)
    assert [(m.name, m.alias, m.datatype, m.timestamp) for m in payload.metrics] == [
        ("a/b", 7, 4, 1000),
        ("c", 8, 12, 2000),
    ]
    assert payload.metrics[0].value() == -3 and payload.metrics[1].is_null
    death = spd.decode(SparkplugEncoder.death(42, 5))
    assert death.seq is None and death.metrics[0].name == "bdSeq" and death.metrics[0].value() == 42


def test_report_by_exception_with_and_without_deadband() -> None:
    changes = ChangeFilter()
    changes.set_deadband(2, 0.5)
    first = SampleBatch("d", [1, 2], [1.0, 10.0], [NOW] * 2)
    assert changes.apply(first) is first
    assert changes.apply(SampleBatch("d", [1, 2], [1.0, 10.4], [NOW] * 2)) is None
    drift = changes.apply(SampleBatch("d", [1, 2], [2.0, 10.6], [NOW] * 2))
    assert drift is not None and drift.aliases == [1, 2] and drift.values == [2.0, 10.6]
    partial = changes.apply(SampleBatch("d", [1, 2], [3.0, 10.7], [NOW] * 2))
    assert partial is not None and partial.aliases == [1] and partial.values == [3.0]
    bad = SampleBatch("d", [1], [3.0], [NOW], qualities=[int(Quality.BAD)])
    assert changes.apply(bad) is bad  # a quality change is news even when the value repeats
    assert changes.suppressed == 3


def test_topics() -> None:
    topics = Topics("plant", "line-1")
    assert topics.data("robot-1") == "spBv1.0/plant/DDATA/line-1/robot-1"
    assert topics.data("") == "spBv1.0/plant/NDATA/line-1"
    assert topics.parse_command("spBv1.0/plant/DCMD/line-1/robot-1") == ("DCMD", "robot-1")
    assert topics.parse_command("spBv1.0/plant/NCMD/line-1") == ("NCMD", "")
    for other in (
        "spBv1.0/plant/DCMD/line-2/robot-1",
        "spBv1.0/other/NCMD/line-1",
        "spBv1.0/plant/DDATA/line-1/x",
        "spBv1.0/plant/DCMD/line-1/a/b",
        "spBv1.0/plant/DCMD/line-1/",
    ):
        assert topics.parse_command(other) is None
    assert Topics.state("scada") == "spBv1.0/STATE/scada"
