"""Fuzz target: RTDE replies — framing, every answer decoder, and whole client sessions whose
controller side is the fuzz input (handshake, recipe, data stream into the packet batcher, and the
motion monitor).

Contract (drivers/ur/rtde.py, rtde_client.py): malformed bytes raise ProtocolError (an Unavailable),
a refusal raises DeviceError/RecipeError; nothing else escapes. Published batches keep their
columns aligned, carry int64 timestamps and values of the signal's column type.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Iterator, Sequence
from functools import cache

from fuzz.engine import Cursor, instrumented, run, run_async

with instrumented(__name__):
    from linebridge.drivers.base import CommandKind, CommandRequest, Pose, SampleBatch, Signal, ValueType
    from linebridge.drivers.ur import rtde
    from linebridge.drivers.ur.catalog import OUTPUT_TYPES
    from linebridge.drivers.ur.fields import FIELDS, RtdeAddress
    from linebridge.drivers.ur.motion import MONITOR_NAMES, MotionTracker, plan_move
    from linebridge.drivers.ur.options import UrOptions
    from linebridge.drivers.ur.rtde import PackageType, ProtocolError
    from linebridge.drivers.ur.rtde_client import RtdeClient
    from linebridge.drivers.ur.streaming import PacketBatcher, plan_stream
    from linebridge.errors import LinebridgeError

INT64 = (-(2**63), 2**63 - 1)
_PYTHON_TYPE = {ValueType.INT: int, ValueType.DOUBLE: float, ValueType.BOOL: bool}
_QUIET = logging.getLogger("fuzz.rtde")
_QUIET.disabled = True  # text messages from the fuzz input would flood the test output
OPTIONS = UrOptions(motion_enabled=True, workspace=((-2, 2), (-2, 2), (-2, 2)))
MOVES = (
    CommandRequest(CommandKind.MOVE_JOINTS, joint_positions=[0.1, -1.2, 1.0, 0.0, 1.5, 0.2]),
    CommandRequest(CommandKind.MOVE_LINEAR, pose=Pose(0.3, -0.2, 0.4, 0.0, 3.1, 0.0)),
)


class NullWriter:
    """Stands in for the socket's writer: requests go nowhere, the replies are the fuzz input."""

    def write(self, data: bytes) -> None:
        """Drop a request."""

    def close(self) -> None:
        """Nothing to close."""

    async def wait_closed(self) -> None:
        """Nothing to wait for."""


def client_reading(replies: bytes) -> RtdeClient:
    """An RtdeClient whose controller answers with `replies`, then closes the connection."""
    client = RtdeClient("fuzz", 0, timeout=5.0, logger=_QUIET)
    reader = asyncio.StreamReader()
    reader.feed_data(replies)
    reader.feed_eof()
    client._reader, client._writer = reader, NullWriter()  # type: ignore[assignment]
    return client


class CheckingSink:
    """A BatchSink that checks every batch it gets against the signals' column types."""

    def __init__(self, signals: Sequence[Signal]) -> None:
        self.types = {s.alias: s.value_type for s in signals}
        self.samples = 0

    def publish(self, batch: SampleBatch) -> None:
        """Aligned columns, int64 timestamps, values of each alias's column type."""
        assert len(batch.aliases) == len(batch.values) == len(batch.timestamps), "columns out of step"
        for alias, value, stamp in zip(batch.aliases, batch.values, batch.timestamps, strict=True):
            assert type(stamp) is int and INT64[0] <= stamp <= INT64[1], (
                f"timestamp {stamp!r} is not an int64"
            )
            wanted = _PYTHON_TYPE[self.types[alias]]
            assert type(value) is wanted, f"{type(value).__name__} in a {self.types[alias].name} column"
            if wanted is int:
                assert INT64[0] <= value <= INT64[1], f"{value} does not fit an int64 column"
        self.samples += len(batch.aliases)

    def degraded(self, reason: str | None) -> None:
        """Not used by the batcher."""

    def alive(self) -> None:
        self.keepalives = getattr(self, "keepalives", 0) + 1


def stream_signals(mask: int) -> list[Signal]:
    """The driver's signals for the RTDE fields picked by the bits of `mask` (always at least one)."""
    chosen = [f for i, f in enumerate(FIELDS) if mask >> i & 1] or [FIELDS[1]]
    signals = []
    for rtde_field in chosen:
        for element, path in enumerate(rtde_field.paths):
            signals.append(
                Signal(
                    path,
                    rtde_field.value_type,
                    address=RtdeAddress(rtde_field.name, element),
                    alias=len(signals) + 1,
                )
            )
    return signals


def check_framer(stream: bytes, step: int) -> tuple[list[tuple[int, bytes]], bool]:
    """Feed `stream` in pieces: (packages, refused); sizes add up, types are known ones."""
    framer = rtde.RtdeFramer()
    packages: list[tuple[int, bytes]] = []
    try:
        for start in range(0, len(stream), max(1, step)):
            packages += framer.feed(stream[start : start + max(1, step)])
    except ProtocolError:
        return packages, True
    assert all(t in PackageType._value2member_map_ for t, _ in packages), "unknown package type passed"
    assert sum(3 + len(p) for _, p in packages) + framer.pending == len(stream), "bytes lost or invented"
    return packages, False


def check_payload_decoders(payload: bytes) -> None:
    """Every answer decoder on one payload: a value or ProtocolError."""
    decoders = (
        rtde.decode_accepted,
        rtde.decode_urcontrol_version,
        rtde.decode_setup_outputs_reply,
        rtde.decode_setup_outputs_request,
        rtde.decode_text_message,
    )
    for decode in decoders:
        try:
            decode(payload)
        except ProtocolError:
            pass
    for name in payload.decode("ascii", errors="replace").split(","):
        try:
            assert isinstance(rtde.parse_type(name), rtde.RtdeType)
        except ProtocolError:
            pass


async def stream_session(replies: bytes, mask: int, frequency: float = 500.0) -> int:
    """The driver's stream(): handshake, recipe, start, then batches until the input runs out."""
    signals = stream_signals(mask)
    plan = plan_stream(signals)
    sink = CheckingSink(signals)
    client = client_reading(replies)
    batcher: PacketBatcher | None = None
    try:
        await client.negotiate()
        recipe = await client.recipe(plan.names, frequency, {n: OUTPUT_TYPES[n] for n in plan.names})
        batcher = PacketBatcher("ur-1", plan, recipe, sink, 1.0 / frequency, 0.004, 10, 0.05)
        await client.start()
        while True:
            batcher.on_packets(await client.receive())
    except LinebridgeError:
        pass
    finally:
        if batcher is not None:
            batcher.flush()
        await client.close()
    return sink.samples


async def monitor_session(replies: bytes, move: CommandRequest) -> None:
    """The driver's motion monitor: recipe, first row, then tracker updates until done or refused."""
    target = plan_move(move, OPTIONS)
    client = client_reading(replies)
    try:
        await client.negotiate()
        recipe = await client.recipe(MONITOR_NAMES, 125.0, {n: OUTPUT_TYPES[n] for n in MONITOR_NAMES})
        await client.start()
        tracker = MotionTracker(target, OPTIONS, recipe.decode((await client.receive())[-1]), 0.0)
        for step in range(10_000):
            for payload in await client.receive():
                row = recipe.decode(payload)
                if tracker.update(row, step * 0.008):
                    return
                assert 0.0 <= tracker.progress(row) <= 1.0, "progress outside 0..1"
    except LinebridgeError:
        pass
    finally:
        await client.close()


def one_input(data: bytes) -> None:
    """libFuzzer entry: framer, payload decoders, a stream session or a motion monitor session."""
    cursor = Cursor(data)
    mode = cursor.byte() % 4
    if mode == 0:
        step = cursor.byte()
        check_framer(cursor.rest(), step)
    elif mode == 1:
        check_payload_decoders(cursor.rest())
    elif mode == 2:
        mask = cursor.uint(3)
        run_async(stream_session(cursor.rest(), mask))
    else:
        move = cursor.choice(MOVES)
        run_async(monitor_session(cursor.rest(), move))


# --- seeds: a well-behaved controller -----------------------------------------------------------


@cache
def handshake(names: tuple[str, ...], recipe_id: int = 1) -> bytes:
    """What a controller answers to negotiate, the recipe and start."""
    return (
        rtde.accepted(PackageType.REQUEST_PROTOCOL_VERSION, True)
        + rtde.setup_outputs_reply(recipe_id, [OUTPUT_TYPES[n].name for n in names])
        + rtde.accepted(PackageType.CONTROL_PACKAGE_START, True)
    )


def data_packages(names: Sequence[str], rows: int, recipe_id: int = 1) -> bytes:
    """`rows` data packages with a rising timestamp and small values."""
    recipe = rtde.Recipe(recipe_id, tuple(names), tuple(OUTPUT_TYPES[n] for n in names))
    out = b""
    for row in range(rows):
        values: list[object] = []
        for name in names:
            rtde_type = OUTPUT_TYPES[name]
            value = row * 0.002 if name == "timestamp" else (1 if name in ("safety_mode",) else 0)
            if name == "robot_mode":
                value = 7
            if rtde_type is rtde.RtdeType.DOUBLE or rtde_type.codes.startswith("d"):
                values += [float(value)] * rtde_type.count
            else:
                values += [int(value)] * rtde_type.count
        out += recipe.encode_package(values)
    return out


def seeds() -> Iterator[bytes]:
    """Valid sessions and packages for every mode."""
    stream = rtde.urcontrol_version(5, 15, 0, 1) + rtde.text_message("hello", "fuzz", rtde.MessageLevel.INFO)
    yield b"\x00\x07" + stream
    yield b"\x01" + rtde.decode_setup_outputs_reply.__name__.encode()
    yield b"\x01\x05hello\x04fuzz\x03"
    plan = plan_stream(stream_signals(0xFFFFFF))
    yield b"\x02\xff\xff\xff" + handshake(plan.names) + data_packages(plan.names, 25)
    plan = plan_stream(stream_signals(0b11))
    yield b"\x02\x00\x00\x03" + handshake(plan.names) + data_packages(plan.names, 3)
    for index in range(len(MOVES)):
        yield bytes([3, index]) + handshake(MONITOR_NAMES) + data_packages(MONITOR_NAMES, 5)
    yield struct.pack(">B", 3) + b"\x00" + rtde.accepted(PackageType.REQUEST_PROTOCOL_VERSION, False)


if __name__ == "__main__":
    run(one_input, seeds)
