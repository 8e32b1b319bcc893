"""Property tests for the Modbus response decoders (the oracles are shared with fuzz/fuzz_modbus.py)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import fuzz_modbus as target
from linebridge.drivers.base import ValueType
from linebridge.drivers.modbus import pdu
from linebridge.drivers.modbus.regmap import load_map

# Reproducible in CI: a fixed example sequence, no example database, no per-example deadline.
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)


@st.composite
def mbap_streams(draw: st.DrawFn) -> bytes:
    """Byte streams of mostly well-formed MBAP frames with occasional damage."""
    frames = []
    for _ in range(draw(st.integers(0, 4))):
        body = draw(st.binary(min_size=0, max_size=260))
        length = draw(st.one_of(st.just(len(body) + 1), st.integers(0, 0xFFFF)))
        protocol = draw(st.sampled_from([0, 0, 0, 1, 0xFFFF]))
        frames.append(struct.pack(">HHHB", draw(st.integers(0, 0xFFFF)), protocol, length, 1) + body)
    return b"".join(frames) + draw(st.binary(max_size=8))


@FUZZ
@given(mbap_streams(), st.integers(1, 300))
def test_framer_splits_any_stream_or_refuses_it(stream: bytes, step: int) -> None:
    frames, refused = target.check_framer(stream, step)
    whole, whole_refused = target.check_framer(stream, len(stream) or 1)
    assert refused == whole_refused, "refusal depends on how the bytes arrive"
    if not refused:
        assert frames == whole, "the split depends on how the bytes arrive"


@FUZZ
@given(st.sampled_from(target.REQUESTS), st.binary(max_size=260))
def test_response_check_only_raises_protocol_errors(request: bytes, response: bytes) -> None:
    target.check_response(request, response)


@FUZZ
@given(st.sampled_from(target.REQUESTS), st.binary(max_size=6))
def test_near_miss_responses(request: bytes, tail: bytes) -> None:
    """Right function code, then anything: the byte-count and echo checks are what is exercised."""
    target.check_response(request, request[:1] + tail)
    target.check_response(request, bytes([request[0] | 0x80]) + tail)


@FUZZ
@given(st.integers(0, len(target.blocks()) - 1), st.binary(min_size=0, max_size=250))
def test_every_planned_block_decodes_any_register_contents(index: int, payload: bytes) -> None:
    target.check_block(target.blocks()[index], payload)


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_entry_point_on_raw_bytes(data: bytes) -> None:
    target.one_input(data)


def test_seeds_pass() -> None:
    for seed in target.seeds():
        target.one_input(seed)


# --- regressions found by fuzzing -----------------------------------------------------------------


def test_whole_scaled_int64_that_can_overflow_int64_is_a_double_column() -> None:
    """Found by fuzz_modbus: int64 x10 decoded 0x7fff... into 92233720368547758075, which no int64
    column (gRPC int_values, Sparkplug Int64) can carry; such a point is now a DOUBLE signal."""
    regmap = load_map(
        {
            "points": [
                {
                    "path": "big",
                    "table": "input_register",
                    "address": 0,
                    "type": "int64",
                    "scale": 10,
                    "offset": 5,
                },
                {
                    "path": "small",
                    "table": "input_register",
                    "address": 4,
                    "type": "int16",
                    "scale": 10,
                    "offset": 5,
                },
            ]
        }
    )
    big, small = regmap.compiled
    assert big.value_type is ValueType.DOUBLE and small.value_type is ValueType.INT
    assert big.engineering(2**63 - 1) == float(2**63 - 1) * 10 + 5
    assert small.engineering(-(2**15)) == -(2**15) * 10 + 5
    block = next(b for b in target.blocks() if any(p.path == "ABCD/int64/x10" for p in b.points))
    index = next(i for i, p in enumerate(block.points) if p.path == "ABCD/int64/x10")
    offset = 2 * (block.points[index].address - block.start)
    payload = bytes(offset) + b"\x7f" + b"\xff" * 7
    assert target.check_block(block, payload)[index] == float(2**63 - 1) * 10 + 5


def test_shipped_map_blocks_are_all_covered() -> None:
    covered = {p.path for block in target.blocks() for p in block.points}
    assert "ABCD/float64/x0.1" in covered and "coil/11" in covered and len(target.blocks()) >= 10
    assert pdu.MAX_PDU == 253
