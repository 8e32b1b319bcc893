"""Property tests for OPC UA values and browse names (oracles shared with fuzz/fuzz_opcua.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asyncua import ua
from asyncua.ua.ua_binary import struct_to_binary
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import fuzz_opcua as target
from linebridge.api.convert import batch_update_bytes
from linebridge.drivers.opcua.conversion import sample_of, timestamp_ns
from linebridge.drivers.opcua.mapping import signal_path
from linebridge.model import Quality, SampleBatch, ValueType

FUZZ = settings(max_examples=250, deadline=None, derandomize=True, database=None)
EDGES = [datetime(1601, 1, 1), datetime(9999, 12, 31, 23, 59, 59), datetime(1700, 1, 1), datetime(2300, 1, 1)]
stamps = st.one_of(st.none(), st.sampled_from(EDGES), st.datetimes(min_value=datetime(1601, 1, 1)))
variants = st.one_of(
    st.floats().map(lambda v: ua.Variant(v, ua.VariantType.Double)),
    st.integers(-(2**31), 2**31 - 1).map(lambda v: ua.Variant(v, ua.VariantType.Int32)),
    st.booleans().map(lambda v: ua.Variant(v, ua.VariantType.Boolean)),
    st.text(max_size=20).map(lambda v: ua.Variant(v, ua.VariantType.String)),
    st.just(ua.Variant()),
)
statuses = st.sampled_from([0, 0x40000000, 0x80000000, 0x80340000])


@FUZZ
@given(variants, stamps, stamps, statuses, st.sampled_from(list(ValueType)))
def test_data_values_become_typed_int64_samples(variant, source, server, status, value_type) -> None:
    value = ua.DataValue(variant, ua.StatusCode(status), SourceTimestamp=source, ServerTimestamp=server)
    target.check_sample(value, value_type)
    # and the same DataValue after a trip through asyncua's binary encoding, as a server sends it
    decoded = target.decode_data_value(struct_to_binary(value))
    assert decoded is not None
    target.check_sample(decoded, value_type)


@FUZZ
@given(
    st.lists(
        st.one_of(st.sampled_from(["ParameterSet", "", "/", "Axes", "A3"]), st.text(max_size=8)), max_size=6
    )
)
def test_browse_names_give_a_usable_path(names: list[str]) -> None:
    target.check_names(names)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_entry_point_on_raw_bytes(data: bytes) -> None:
    target.one_input(data)


def test_seeds_pass() -> None:
    for seed in target.seeds():
        target.one_input(seed)


# --- regressions found by a probe (issue 19, item 5) -----------------------------------------------


@pytest.mark.parametrize("stamp", [datetime(1601, 1, 1), datetime(9999, 12, 31, 23, 59, 59)])
def test_datetime_zero_and_max_are_replaced_marked_and_encodable(stamp: datetime) -> None:
    """A DateTime of 0 (1601) or max (9999) gave a timestamp outside int64 and the wire encoder raised
    struct.error, ending the subscription of every client of the device."""
    value = ua.DataValue(ua.Variant(1.5, ua.VariantType.Double), SourceTimestamp=stamp)
    decoded, ns, quality, trusted = sample_of(value, ValueType.DOUBLE)
    assert (decoded, quality, trusted) == (1.5, Quality.UNCERTAIN, False)
    assert -(2**63) <= ns <= 2**63 - 1 and -(2**63) <= timestamp_ns(value) <= 2**63 - 1
    batch = SampleBatch("robot-1", [1], [decoded], [ns], [int(quality)], ValueType.DOUBLE)
    assert batch_update_bytes([batch], {1: ValueType.DOUBLE})


def test_datetime_zero_source_falls_back_to_the_server_timestamp() -> None:
    server = datetime(2026, 1, 2, tzinfo=UTC)
    value = ua.DataValue(
        ua.Variant(2, ua.VariantType.Int32), SourceTimestamp=datetime(1601, 1, 1), ServerTimestamp=server
    )
    _, ns, quality, _ = sample_of(value, ValueType.INT)
    assert ns == int(server.timestamp()) * 1_000_000_000 and quality is Quality.UNCERTAIN


def test_a_good_timestamp_stays_good() -> None:
    value = ua.DataValue(ua.Variant(True, ua.VariantType.Boolean), SourceTimestamp=datetime(2026, 1, 2))
    assert sample_of(value, ValueType.BOOL)[2:] == (Quality.GOOD, True)


@pytest.mark.parametrize("names", [["ParameterSet"], ["ParameterSet", "ParameterSet"], []])
def test_a_bare_parameter_set_gives_no_empty_path(names: list[str]) -> None:
    """signal_path(["ParameterSet"]) returned "", and the browser accepted a signal with an empty path."""
    path = signal_path(names)
    assert path and all(path.split("/")), path


def test_a_variant_with_empty_dimensions_is_asyncuas_error_not_ours() -> None:
    """Found by fuzz_opcua: asyncua's decoder raises IndexError for an array Variant whose dimensions
    array is empty; asyncua's client protocol closes that connection, and the target treats it so."""
    data = bytes.fromhex(
        "0102 04ff ffff 0100 074a 00ff 0b00 0000 0000 00f8 3f00 0000 0000 0000 0000 0000 0000 00"
    )
    target.one_input(data)
    assert target.decode_data_value(data[8:]) is None  # the bytes after the column type and two names


def test_a_huge_array_of_null_elements_is_refused_at_once() -> None:
    """Found by fuzz_opcua: a Variant declaring 1.9 billion Null elements (0x80, length 0x73020200) kept
    asyncua's decoder looping for minutes inside the event loop; drivers/opcua/hardening.py refuses it."""
    data = bytes.fromhex("80c0c580000202 73c0".replace(" ", ""))
    target.one_input(data)
    assert target.decode_data_value(data[2:]) is None
    ok = ua.DataValue(ua.Variant([1, 2, 3], ua.VariantType.Int32))
    assert target.decode_data_value(struct_to_binary(ok)).Value.Value == [1, 2, 3]


def test_an_integer_beyond_int64_is_bad_not_an_encoder_crash() -> None:
    """Found by fuzz_opcua: a UInt64 of 18374687066068877704 for an INT signal passed as GOOD and the
    Subscribe encoder raised ValueError ("Value out of range")."""
    value = ua.DataValue(ua.Variant(18374687066068877704, ua.VariantType.UInt64))
    decoded, _, quality, _ = sample_of(value, ValueType.INT)
    assert (decoded, quality) == (0, Quality.BAD)
    target.check_sample(value, ValueType.INT)
