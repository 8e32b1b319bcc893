"""The hand-written batch encoder produces exactly what the protobuf runtime decodes back."""

from __future__ import annotations

import pytest
from google.protobuf.wrappers_pb2 import UInt64Value
from hypothesis import given, settings
from hypothesis import strategies as st

from linebridge.api import pb
from linebridge.api.wire import encode_fast, wrap_update
from linebridge.model import SampleBatch, ValueType
from linebridge.varint import varint

ALIASES = st.integers(min_value=0, max_value=2**32 - 1)
TIMESTAMPS = st.integers(min_value=-(2**63), max_value=2**63 - 1)


# The edges where a varint grows by a byte, and the largest values protobuf fields carry.
VARINT_EDGES = [0, 1, 127, 128, 300, 16383, 16384, 2**21 - 1, 2**21, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1]


@pytest.mark.parametrize("value", VARINT_EDGES)
def test_varint_matches_protobuf(value):
    # protobuf's own encoder of a uint64 field (field 1, wire type 0) is the independent reference.
    reference = UInt64Value(value=value).SerializeToString()
    assert reference[:1] == b"\x08" or value == 0
    assert varint(value) == (reference[1:] if value else b"\x00")
    assert len(varint(value)) == max(1, (value.bit_length() + 6) // 7)


@pytest.mark.parametrize("value", [-1, -(2**63), 2**64])
def test_varint_refuses_what_protobuf_cannot_carry(value):
    with pytest.raises(ValueError, match="varint holds"):
        varint(value)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.data())
def test_double_batches_round_trip(data):
    n = data.draw(st.integers(min_value=0, max_value=40))
    aliases = data.draw(st.lists(ALIASES, min_size=n, max_size=n))
    values = data.draw(st.lists(st.floats(allow_nan=False), min_size=n, max_size=n))
    stamps = data.draw(st.lists(TIMESTAMPS, min_size=n, max_size=n))
    qualities = data.draw(st.one_of(st.none(), st.lists(st.integers(1, 3), min_size=n, max_size=n)))
    batch = SampleBatch("d", aliases, values, stamps, qualities=qualities, value_type=ValueType.DOUBLE)
    encoded = encode_fast(batch)
    assert encoded is not None
    decoded = pb.telemetry.SampleBatch.FromString(encoded)
    assert list(decoded.aliases) == aliases and list(decoded.timestamps) == stamps
    assert list(decoded.double_values) == values
    assert list(decoded.qualities) == (qualities or [])
    expected = pb.telemetry.SampleBatch(
        aliases=aliases, timestamps=stamps, double_values=values, qualities=qualities or []
    )
    assert encoded == expected.SerializeToString()  # byte for byte what protobuf writes


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 200), st.booleans()), max_size=30))
def test_bool_batches_and_update_wrapper(rows):
    aliases = [a for a, _ in rows]
    values = [v for _, v in rows]
    batch = SampleBatch("d", aliases, values, [5] * len(rows), value_type=ValueType.BOOL)
    update = pb.telemetry.TelemetryUpdate.FromString(wrap_update(encode_fast(batch)))
    assert update.WhichOneof("update") == "batch" or not rows
    assert list(update.batch.bool_values) == values and list(update.batch.aliases) == aliases


def test_general_types_take_the_protobuf_path():
    assert encode_fast(SampleBatch("d", [1], [3], [1], value_type=ValueType.INT)) is None
    assert encode_fast(SampleBatch("d", [1], ["x"], [1], value_type=ValueType.STRING)) is None
    assert encode_fast(SampleBatch("d", [1, 2], [1.0, True], [1, 1])) is None


def test_alias_cache_follows_list_identity():
    from linebridge.api.wire import _aliases

    aliases = [300, 301]
    assert _aliases.encode(aliases) is _aliases.encode(aliases)  # reused list: encoded once
    other = [300, 301, 302]
    decoded = pb.telemetry.SampleBatch.FromString(_aliases.encode(other))
    assert list(decoded.aliases) == [300, 301, 302]
    assert list(pb.telemetry.SampleBatch.FromString(_aliases.encode([5, 6])).aliases) == [5, 6]
