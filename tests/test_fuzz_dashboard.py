"""Property tests for the UR Dashboard reply parsing and client (oracles shared with fuzz/fuzz_dashboard.py)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import fuzz_dashboard as target
from linebridge.drivers.base import DeviceError, Unavailable
from linebridge.drivers.ur.dashboard import GREETING, MAX_LINE, DashboardClient
from linebridge.errors import LinebridgeError

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)
WORDS = [
    "Robotmode:",
    "Safetystatus:",
    "Safetymode:",
    "Program running:",
    "Robot running:",
    "Loaded program:",
    "No program loaded",
    "PLAYING",
    "paused",
    "STOPPED",
    "true",
    "False",
    "Powering on",
    "Stopped",
    ":",
    " ",
    "RUNNING",
    "\t",
    "\r",
    "\x00",
    "é",
    "\ufffd",
]
replies = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=5).map("".join)
lines = st.lists(st.one_of(replies, st.text(max_size=40)), max_size=8).map(lambda ls: "\n".join(ls) + "\n")


@FUZZ
@given(replies)
def test_every_parser_answers_its_type_or_device_error(reply: str) -> None:
    target.check_reply(reply)


@FUZZ
@given(st.text(max_size=200))
def test_parsers_on_any_text(reply: str) -> None:
    target.check_reply(reply)


@FUZZ
@given(lines.map(str.encode), st.binary(min_size=1, max_size=12))
def test_client_sessions_end_in_answers_or_a_clear_error(replies_bytes: bytes, plan: bytes) -> None:
    answered = asyncio.run(target.session(replies_bytes, plan))
    assert 0 <= answered <= len(plan)


@FUZZ
@given(st.binary(max_size=300), st.binary(min_size=1, max_size=6))
def test_client_sessions_on_raw_bytes(replies_bytes: bytes, plan: bytes) -> None:
    asyncio.run(target.session(replies_bytes, plan))


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_entry_point_on_raw_bytes(data: bytes) -> None:
    target.one_input(data)


def test_seeds_pass() -> None:
    for seed in target.seeds():
        target.one_input(seed)


def test_an_overlong_line_is_unavailable_not_a_value_error() -> None:
    client = target.client_reading(b"y" * (MAX_LINE + 1) + b"\ntrue\n")
    with pytest.raises(Unavailable):
        asyncio.run(client.query("running"))


# --- the same over real TCP on loopback, connect() and its greeting check included ------------------


async def _over_tcp(greeting: bytes, replies_bytes: bytes, plan: bytes) -> int:
    """A raw server sends a greeting and `replies_bytes` at once (replies queue up), then hangs up."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting + replies_bytes)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    client = DashboardClient("127.0.0.1", server.sockets[0].getsockname()[1], timeout=2.0)
    answered = 0
    try:
        await client.connect()
        for pick in plan:
            await client.query(target.QUERIES[pick % len(target.QUERIES)])
            answered += 1
    except (DeviceError, Unavailable):  # the expected end of a hostile session
        pass  # the caller checks how many queries were answered
    except LinebridgeError as exc:
        raise AssertionError(f"unexpected {exc!r}") from None
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    return answered


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(
    st.sampled_from([GREETING.encode() + b"\n", b"Connected: something else\n", b"", GREETING.encode()]),
    lines.map(str.encode),
    st.binary(min_size=1, max_size=4),
)
def test_client_over_real_tcp(greeting: bytes, replies_bytes: bytes, plan: bytes) -> None:
    answered = asyncio.run(_over_tcp(greeting, replies_bytes, plan))
    if not greeting.startswith(GREETING.encode()):
        assert answered == 0, "a server without the Dashboard greeting was used"
