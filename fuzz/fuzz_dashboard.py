"""Fuzz target: UR Dashboard replies — the reply parsers and a client session whose server side is
the fuzz input (line framing with the 4 KiB limit, owed replies, success wording, query parsing).

Contract (drivers/ur/dashboard.py): a reply the driver cannot use raises DeviceError, a broken or
closed stream Unavailable, a bad argument InvalidArgument; nothing else escapes, and every answer
has the type its method declares (str, or bool for `running` and `is in remote control`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from fuzz.engine import Cursor, instrumented, run, run_async

with instrumented(__name__):
    from linebridge.drivers.base import DeviceError, ValueType
    from linebridge.drivers.ur import dashboard as dash
    from linebridge.drivers.ur.dashboard import COMMANDS, GREETING, MAX_LINE, DashboardClient
    from linebridge.drivers.ur.fields import DASHBOARD_SIGNALS
    from linebridge.errors import LinebridgeError

QUERIES = tuple(
    sorted({c.command for c in COMMANDS if not c.success} | {s.command for s in DASHBOARD_SIGNALS})
)
BOOL_QUERIES = frozenset({"running", "is in remote control"})
ARGUMENTS = ("", "/programs/pick.urp", "two\nlines", "x" * 300)


class NullWriter:
    """Stands in for the socket's writer: commands go nowhere, the replies are the fuzz input."""

    def write(self, data: bytes) -> None:
        """Drop a command."""

    async def drain(self) -> None:
        """Nothing buffered."""

    def close(self) -> None:
        """Nothing to close."""

    async def wait_closed(self) -> None:
        """Nothing to wait for."""


def client_reading(replies: bytes) -> DashboardClient:
    """A connected DashboardClient whose server answers with `replies`, then closes the connection."""
    client = DashboardClient("fuzz", 0, timeout=5.0)
    reader = asyncio.StreamReader(limit=MAX_LINE)  # as open_connection(limit=MAX_LINE) makes it
    reader.feed_data(replies)
    reader.feed_eof()
    client._reader, client._writer = reader, NullWriter()  # type: ignore[assignment]
    return client


def check_reply(reply: str) -> None:
    """One reply line through every parser: a value of the declared type, or DeviceError."""
    for command in COMMANDS:
        try:
            assert dash.check_success(command, reply) == reply
        except DeviceError:
            pass
    for query in QUERIES:
        try:
            value = dash.parse_query(query, reply)
        except DeviceError:
            continue
        assert type(value) is (bool if query in BOOL_QUERIES else str), f"{query!r} answered {value!r}"
    try:
        state, program = dash.parse_program_state(reply)
        assert state in ("STOPPED", "PLAYING", "PAUSED") and isinstance(program, str)
    except DeviceError:
        pass


async def session(replies: bytes, plan: bytes) -> int:
    """Commands picked by `plan` against `replies`; returns how many got an answer."""
    client = client_reading(replies)
    answered = 0
    try:
        for pick in plan:
            command = COMMANDS[pick % len(COMMANDS)]
            if pick >= 128:
                value = await client.query(QUERIES[pick % len(QUERIES)])
                assert isinstance(value, bool | str)
            else:
                value = await client.run(command, ARGUMENTS[pick % len(ARGUMENTS)])
                wanted = bool if command.output is ValueType.BOOL else str
                assert type(value) is wanted, f"{command.method} answered {value!r}"
            if isinstance(value, str):
                assert "\n" not in value, "a reply spans lines"
            answered += 1
    except LinebridgeError:
        pass
    finally:
        await client.close()
    return answered


def one_input(data: bytes) -> None:
    """libFuzzer entry: a reply through the parsers, or a client session."""
    cursor = Cursor(data)
    if cursor.byte() % 2 == 0:
        check_reply(cursor.rest().decode("utf-8", errors="replace"))
    else:
        plan = cursor.chunk()
        run_async(session(cursor.rest(), plan))


def seeds() -> Iterator[bytes]:
    """Typical replies of an e-Series and a CB3 controller."""
    replies = [
        "Robotmode: RUNNING",
        "Safetystatus: NORMAL",
        "Safetymode: PROTECTIVE_STOP",
        "Program running: true",
        "Robot running: True",
        "true",
        "PLAYING /programs/pick.urp",
        "Loaded program: /programs/x.urp",
        "No program loaded",
        "Powering on",
        "Loading program: /programs/pick.urp",
        "Stopped",
        "File not found: x.urp",
        "Command is not allowed due to safety reasons",
    ]
    for reply in replies:
        yield b"\x00" + reply.encode()
    lines = "\n".join([GREETING, *replies]) + "\n"
    yield (
        b"\x01"
        + bytes([len(replies)])
        + bytes(range(0, 256, 256 // len(replies)))[: len(replies)]
        + lines.encode()
    )
    yield b"\x01\x03\x80\x81\x82" + b"x" * (MAX_LINE + 10) + b"\ntrue\n"


if __name__ == "__main__":
    run(one_input, seeds)
