"""Property tests for the client SDK's columnar decoder (oracles shared with fuzz/fuzz_client.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import fuzz_client as target
from linebridge.api import pb
from linebridge.client._wire import decode_batch, split_update, varints
from linebridge.client.errors import DecodeError
from linebridge.varint import varint

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)


@st.composite
def batches(draw: st.DrawFn) -> pb.telemetry.SampleBatch:
    """A SampleBatch with any column contents (consistent with a catalog or not)."""
    return pb.telemetry.SampleBatch(
        aliases=draw(st.lists(st.one_of(st.integers(0, 9), st.integers(0, 2**32 - 1)), max_size=30)),
        timestamps=draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=30)),
        double_values=draw(st.lists(st.floats(allow_nan=True), max_size=30)),
        int_values=draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=30)),
        bool_values=draw(st.lists(st.booleans(), max_size=30)),
        string_values=draw(st.lists(st.text(max_size=6), max_size=5)),
        qualities=draw(st.lists(st.one_of(st.integers(0, 3), st.integers(-(2**31), 2**31 - 1)), max_size=30)),
    )


@FUZZ
@given(batches(), st.sampled_from(target.CATALOGS))
def test_decode_matches_protobuf(message, catalog):
    columns = target.check_batch(message.SerializeToString())
    assert columns is not None
    target.check_catalog(columns, catalog)
    target.check_update(pb.telemetry.TelemetryUpdate(batch=message).SerializeToString())


@FUZZ
@given(batches(), st.data())
def test_damaged_bytes_decode_like_protobuf(message, data):
    raw = bytearray(message.SerializeToString())
    if raw:
        cut = data.draw(st.integers(0, len(raw)))
        raw = raw[:cut] if data.draw(st.booleans()) else raw
        for _ in range(data.draw(st.integers(0, 3)) if raw else 0):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    target.check_batch(bytes(raw))
    target.check_update(bytes(raw))


@FUZZ
@given(st.binary(max_size=64))
def test_any_bytes(data):
    target.one_input(data)


def test_unpacked_and_split_fields_go_through_protobuf():
    unpacked_ints = b"".join(b"\x20" + varint(z) for z in (1, 2, 3))  # zigzag -1, 1, -2, field 4 unpacked
    split_doubles = pb.telemetry.SampleBatch(double_values=[1.0]).SerializeToString() * 2
    for data in (unpacked_ints, split_doubles, b"\x40\x01"):  # the last: an unknown field 8
        assert target.check_batch(data) is not None
    assert decode_batch(unpacked_ints).ints.tolist() == [-1, 1, -2]
    assert decode_batch(split_doubles).doubles.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x12\x09" + b"\x00" * 9, "multiple of 8"),
        (b"\x0a\x05\x01", "runs past the end"),
        (b"\x0a\x02\x80\x80", "ends inside a varint"),
        (b"\x0a\x0b" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
        (b"\x32\x01\xff", "not valid UTF-8"),
    ],
)
def test_malformed_batches_raise_decode_error(data, message):
    with pytest.raises(DecodeError, match=message):
        decode_batch(data)


def test_varints_decode_multi_byte_values():
    values = [0, 1, 127, 128, 300, 2**32 - 1, 2**63, 2**64 - 1]
    raw = np.frombuffer(b"".join(varint(v) for v in values), np.uint8)
    assert varints(raw).tolist() == values


def test_split_update_leaves_unusual_messages_to_protobuf():
    batch = pb.telemetry.TelemetryUpdate(batch=pb.telemetry.SampleBatch(aliases=[1])).SerializeToString()
    assert split_update(batch)[0] == "batch"
    assert split_update(batch + batch)[0] == "?"  # protobuf merges a repeated member
    assert split_update(b"\x08\x01")[0] == "?"


# -- regressions found by fuzzing ---------------------------------------------------------------------


def test_an_empty_packed_qualities_field_means_all_good():
    data = pb.telemetry.SampleBatch(aliases=[1], timestamps=[5], double_values=[2.0]).SerializeToString()
    columns = target.check_batch(data + b"\x3a\x00")
    assert columns is not None and columns.qualities is None
