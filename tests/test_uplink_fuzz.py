"""Property tests for what the broker delivers to the edge node (oracles shared with fuzz/fuzz_uplink.py),
and the regressions fuzzing found."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import fuzz_uplink as target
from linebridge.uplink.sparkplug import parse_state

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def states(draw: st.DrawFn) -> bytes:
    """STATE payloads: the 3.0 shape with any values in it, any JSON, or any bytes."""
    shape = draw(st.integers(0, 2))
    if shape == 0:
        body = {"online": draw(JSON_VALUES), "timestamp": draw(JSON_VALUES)}
        return json.dumps(body).encode()
    if shape == 1:
        return json.dumps(draw(JSON_VALUES)).encode()
    return draw(st.binary(max_size=40))


@FUZZ
@given(states())
def test_parse_state_returns_int64_stamps_or_value_error(payload: bytes) -> None:
    target.check_state(payload)


@FUZZ
@given(st.sampled_from(target.KINDS), st.text(max_size=12), states())
def test_incoming_messages_never_raise(kind: str, suffix: str, payload: bytes) -> None:
    target.check_message(kind + suffix, payload)


@FUZZ
@given(st.binary(max_size=200))
def test_one_input_on_raw_bytes(data: bytes) -> None:
    target.one_input(data)


def test_seeds_run() -> None:
    for seed in target.seeds():
        target.one_input(seed)


# -- regressions found by fuzzing -------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b'{"online": true, "timestamp": 1e400}',  # json gives inf: int(inf) raised OverflowError
        b'{"online": true, "timestamp": -1e400}',
        b'{"online": true, "timestamp": NaN}',
        b'{"online": true, "timestamp": 1.5}',
        b'{"online": true, "timestamp": 1e30}',
        b'{"online": true, "timestamp": -5}',
        b'{"online": true, "timestamp": true}',
        b'{"online": 1, "timestamp": 5}',
        b"[1, 2]",
    ],
)
def test_a_state_with_a_bad_timestamp_or_shape_is_refused_with_value_error(payload: bytes) -> None:
    with pytest.raises(ValueError):
        parse_state(payload)


def test_a_non_finite_state_timestamp_is_ignored_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    node = target.Node().node
    caplog.set_level(logging.WARNING, logger="linebridge.uplink.sparkplug")
    assert node.host_online is False
    node._on_message("spBv1.0/STATE/scada", b'{"online": true, "timestamp": 1e400}')
    assert node.host_online is False
    assert any("malformed STATE" in r.getMessage() for r in caplog.records)
    node._on_message("spBv1.0/STATE/scada", b'{"online": true, "timestamp": 1700000000000}')
    assert node.host_online is True
