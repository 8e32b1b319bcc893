"""Property tests for the RTDE reply decoders and client sessions (oracles shared with fuzz/fuzz_rtde.py)."""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import fuzz_rtde as target
from linebridge.drivers.base import CommandKind
from linebridge.drivers.ur import rtde
from linebridge.drivers.ur.catalog import OUTPUT_TYPES
from linebridge.drivers.ur.motion import MONITOR_NAMES, MotionTracker, plan_move
from linebridge.drivers.ur.rtde import PackageType, ProtocolError, Recipe, RtdeType
from linebridge.drivers.ur.rtde_client import RtdeClient
from linebridge.drivers.ur.streaming import PacketBatcher, plan_stream
from linebridge.errors import LinebridgeError

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None)
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)


def _element(code: str) -> st.SearchStrategy[object]:
    if code == "d":
        return st.one_of(ANY_FLOAT, st.floats(0, 1e6))
    bits = {"i": 32, "I": 32, "q": 64, "B": 8}[code]
    signed = code.islower()
    return st.integers(-(2 ** (bits - 1)) if signed else 0, 2 ** (bits - 1) - 1 if signed else 2**bits - 1)


@st.composite
def data_rows(draw: st.DrawFn, names: Sequence[str], recipe_id: int = 1) -> bytes:
    """Data packages of a recipe with arbitrary element values (NaN, inf and extremes included)."""
    recipe = Recipe(recipe_id, tuple(names), tuple(OUTPUT_TYPES[n] for n in names))
    codes = "".join(OUTPUT_TYPES[n].codes for n in names)
    rows = draw(st.lists(st.tuples(*(_element(c) for c in codes)), min_size=1, max_size=6))
    return b"".join(recipe.encode_package(list(row)) for row in rows)


@st.composite
def junk_packages(draw: st.DrawFn) -> bytes:
    """Packages with a valid header and a random payload of a random known type."""
    kind = draw(st.sampled_from([int(t) for t in PackageType]))
    return rtde.encode_package(kind, draw(st.binary(max_size=40)))


@st.composite
def sessions(draw: st.DrawFn) -> tuple[int, bytes]:
    """(field mask, controller replies): a plausible handshake, then data mixed with junk, maybe cut."""
    mask = draw(st.integers(1, 2**19 - 1))
    names = plan_stream(target.stream_signals(mask)).names
    types = [OUTPUT_TYPES[n].name for n in names]
    if draw(st.booleans()):
        types[draw(st.integers(0, len(types) - 1))] = draw(
            st.sampled_from(["NOT_FOUND", "IN_USE", "DOUBLE", "UINT64"])
        )
    replies = (
        rtde.accepted(PackageType.REQUEST_PROTOCOL_VERSION, draw(st.booleans()) or True)
        + rtde.setup_outputs_reply(draw(st.sampled_from([1, 1, 0, 2])), types)
        + rtde.accepted(PackageType.CONTROL_PACKAGE_START, True)
        + draw(data_rows(names))
        + draw(st.one_of(st.just(b""), junk_packages()))
    )
    cut = draw(st.one_of(st.none(), st.integers(0, len(replies))))
    return mask, replies[:cut]


@FUZZ
@given(st.lists(st.one_of(junk_packages(), st.binary(max_size=12)), max_size=5), st.integers(1, 64))
def test_framer_splits_any_stream_or_refuses_it(parts: list[bytes], step: int) -> None:
    stream = b"".join(parts)
    packages, refused = target.check_framer(stream, step)
    whole, whole_refused = target.check_framer(stream, len(stream) or 1)
    assert refused == whole_refused
    if not refused:
        assert packages == whole


@FUZZ
@given(st.binary(max_size=80))
def test_payload_decoders_raise_only_protocol_errors(payload: bytes) -> None:
    target.check_payload_decoders(payload)


@FUZZ
@given(sessions())
def test_stream_sessions_end_in_batches_or_a_clear_error(session: tuple[int, bytes]) -> None:
    mask, replies = session
    asyncio.run(target.stream_session(replies, mask))


@FUZZ
@given(st.sampled_from(target.MOVES), data_rows(MONITOR_NAMES))
def test_motion_monitor_takes_any_row_values(move: object, rows: bytes) -> None:
    asyncio.run(target.monitor_session(target.handshake(MONITOR_NAMES) + rows, move))  # type: ignore[arg-type]


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_entry_point_on_raw_bytes(data: bytes) -> None:
    target.one_input(data)


def test_seeds_pass() -> None:
    for seed in target.seeds():
        target.one_input(seed)


# --- the same sessions over real TCP on loopback ----------------------------------------------------


async def _over_tcp(replies: bytes, mask: int) -> int:
    """A raw server sends `replies` to a real RtdeClient; returns the samples published."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(replies)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    signals = target.stream_signals(mask)
    plan, sink = plan_stream(signals), target.CheckingSink(signals)
    client = RtdeClient("127.0.0.1", port, timeout=2.0)
    batcher = None
    try:
        await client.connect()
        await client.negotiate()
        recipe = await client.recipe(plan.names, 500.0, {n: OUTPUT_TYPES[n] for n in plan.names})
        batcher = PacketBatcher("ur-1", plan, recipe, sink, 0.002, 0.004, 10, 0.05)
        await client.start()
        while True:
            batcher.on_packets(await client.receive())
    except LinebridgeError:  # the expected end of a hostile session: a domain error, nothing else
        pass  # the samples gathered so far are checked by the caller
    finally:
        if batcher is not None:
            batcher.flush()
        await client.close()
        server.close()
        await server.wait_closed()
    return sink.samples


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(sessions())
def test_stream_sessions_over_real_tcp(session: tuple[int, bytes]) -> None:
    mask, replies = session
    assert asyncio.run(_over_tcp(replies, mask)) == asyncio.run(target.stream_session(replies, mask))


# --- regressions found by fuzzing -----------------------------------------------------------------


def test_uint64_with_bit_63_fits_an_int64_column() -> None:
    """Found by fuzz_rtde: actual_digital_input_bits = 0x9374... decoded to an int above 2**63 - 1,
    which the signal's INT column (gRPC int_values, Sparkplug Int64) cannot carry."""
    recipe = Recipe(1, ("actual_digital_input_bits",), (RtdeType.UINT64,))
    (_, value) = recipe.decode(b"\x01" + b"\x93\x74" + b"\x00" * 6)
    assert value == (0x9374 << 48) - (1 << 64) and value < 0
    assert value & (2**64 - 1) == 0x9374 << 48, "the 64 bits are kept"
    replies = target.handshake(("timestamp", "actual_digital_input_bits")) + rtde.encode_package(
        PackageType.DATA_PACKAGE, b"\x01" + struct.pack(">d", 1.0) + b"\xff" * 8
    )
    assert asyncio.run(target.stream_session(replies, 1 << 13 | 1)) == 2, "timestamp and the inputs"


@pytest.mark.parametrize("stamp", [math.nan, math.inf, -math.inf, 1e300, -1.0, 2e9])
def test_a_timestamp_that_is_no_controller_uptime_is_a_protocol_error(stamp: float) -> None:
    """Found by fuzz_rtde: a timestamp of -1.9e255 s became a 250-digit source time (and NaN raised
    ValueError, inf OverflowError) instead of a clean ProtocolError; nothing half-decoded is published."""
    names = ("timestamp", "actual_q")
    recipe = Recipe(1, names, (RtdeType.DOUBLE, RtdeType.VECTOR6D))
    signals = target.stream_signals(0b11)
    sink = target.CheckingSink(signals)

    async def scenario() -> None:
        batcher = PacketBatcher("ur-1", plan_stream(signals), recipe, sink, 0.002, 0.004, 10, 0.05)
        good = recipe.encode_package([1.0] + [0.0] * 6)[3:]
        batcher.on_packets([good])
        with pytest.raises(ProtocolError, match="timestamp"):
            batcher.on_packets(
                [
                    recipe.encode_package([1.002] + [0.0] * 6)[3:],
                    recipe.encode_package([stamp] + [0.0] * 6)[3:],
                ]
            )
        batcher.flush()

    asyncio.run(scenario())
    assert sink.samples == 7, "only the good packet before the bad chunk is published"


@pytest.mark.parametrize("kind", [CommandKind.MOVE_JOINTS, CommandKind.MOVE_LINEAR])
@pytest.mark.parametrize("bad", [1e200, math.inf, math.nan])
def test_monitor_rows_with_huge_or_non_finite_poses_are_protocol_errors(
    kind: CommandKind, bad: float
) -> None:
    """Found by fuzz_rtde: a TCP rotation of 1e200 raised OverflowError inside the motion monitor
    (the rotation angle squared its components); inf raised ValueError from math.cos."""
    move = next(m for m in target.MOVES if m.kind is kind)
    tracker_target = plan_move(move, target.OPTIONS)
    row = [1, 0.0, *[0.0] * 6, 0.3, -0.2, 0.4, 0.0, 3.1, 0.0, 1, 1, 7]
    row[11] = bad  # rx of actual_TCP_pose
    if math.isfinite(bad):
        tracker = MotionTracker(tracker_target, target.OPTIONS, tuple(row), 0.0)
        assert tracker.update(tuple(row), 0.1) in (True, False)
    else:
        with pytest.raises(ProtocolError, match="non-finite"):
            MotionTracker(tracker_target, target.OPTIONS, tuple(row), 0.0)
