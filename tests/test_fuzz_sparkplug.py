"""Property tests for Sparkplug DCMD/NCMD payload handling (oracles shared with fuzz/fuzz_sparkplug.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import fuzz_sparkplug as target
from linebridge.commands.types import CommandState
from linebridge.model import ValueType
from linebridge.uplink.cloud_commands import REBIRTH, decode
from linebridge.uplink.encoder import get_value
from linebridge.uplink.proto import sparkplug_b_pb2 as spb

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)
NAMES = [path for path, _, _ in target.SIGNALS] + [REBIRTH, "", "sim-1/setpoint", "nope", "values/*"]
VALUES = {
    "int_value": st.integers(0, 2**32 - 1),
    "long_value": st.integers(0, 2**64 - 1),
    "float_value": st.floats(width=32, allow_nan=True),
    "double_value": st.floats(allow_nan=True),
    "boolean_value": st.booleans(),
    "string_value": st.text(max_size=20),
    "bytes_value": st.binary(max_size=8),
}


@st.composite
def metrics(draw: st.DrawFn) -> spb.Payload.Metric:
    """A metric as a host application might send it, right or wrong in any field."""
    metric = spb.Payload.Metric()
    if draw(st.booleans()):
        metric.name = draw(st.one_of(st.sampled_from(NAMES), st.text(max_size=12)))
    if draw(st.booleans()):
        metric.alias = draw(st.one_of(st.integers(0, 6), st.just(99), st.integers(0, 2**64 - 1)))
    if draw(st.booleans()):
        metric.datatype = draw(
            st.one_of(
                st.sampled_from([spb.Double, spb.Int64, spb.Boolean, spb.String]), st.integers(0, 2**32 - 1)
            )
        )
    field = draw(st.sampled_from([*VALUES, None]))
    if field is not None:
        setattr(metric, field, draw(VALUES[field]))
    if draw(st.integers(0, 9)) == 0:
        metric.is_null = True
    return metric


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """A serialized Payload, sometimes with a few bytes overwritten or cut short."""
    message = spb.Payload(metrics=draw(st.lists(metrics(), max_size=4)))
    if draw(st.booleans()):
        message.seq = draw(st.integers(0, 2**64 - 1))
    data = bytearray(message.SerializeToString())
    for _ in range(draw(st.integers(0, 2))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))] if draw(st.integers(0, 5)) == 0 else data)


@FUZZ
@given(payloads())
def test_decode_and_values_raise_only_their_documented_errors(payload: bytes) -> None:
    target.check_decode(payload)


@FUZZ
@given(st.sampled_from(target.VERBS), st.sampled_from(target.DEVICE_IDS), payloads())
def test_handle_never_raises_and_counts_each_command_once(verb: str, device_id: str, payload: bytes) -> None:
    target.check_handle(verb, device_id, payload)


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_entry_point_on_raw_bytes(data: bytes) -> None:
    target.one_input(data)


def test_seeds_pass() -> None:
    state = target.node()
    before = state.rebirths
    for seed in target.seeds():
        target.one_input(seed)
    assert state.rebirths == before + 1


# --- regressions found by fuzzing -----------------------------------------------------------------


def _string_metric(raw: bytes) -> bytes:
    """A DCMD for `label` whose string_value (field 15) holds `raw`, encoded by hand (not UTF-8 checked)."""
    metric = b"\x0a\x05label" + b"\x20\x0c" + b"\x7a" + bytes([len(raw)]) + raw  # name, datatype String
    return b"\x12" + bytes([len(metric)]) + metric


def test_a_non_utf8_string_value_is_refused_not_passed_on_as_bytes() -> None:
    """Found by fuzz_sparkplug: Sparkplug's .proto is proto2, so upb returns a string field holding
    invalid UTF-8 as bytes, and get_value() handed b'fro\\x93\\xe4cloud' on as a STRING value."""
    payload = _string_metric(b"fro\x93\xe4cloud")
    (metric,) = decode(payload).metrics
    with pytest.raises(ValueError, match="not UTF-8"):
        get_value(metric, ValueType.STRING)
    assert (
        get_value(decode(_string_metric("from cloud ✓".encode())).metrics[0], ValueType.STRING)
        == "from cloud ✓"
    )
    state = target.node()
    target.check_handle("DCMD", target.DEVICE, payload)
    newest = next(reversed(state.manager._history.values()))
    assert newest.state is CommandState.REJECTED and newest.error_reason == "INVALID_ARGUMENT"
    assert "not UTF-8" in newest.error_message
