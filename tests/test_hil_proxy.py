"""The HIL fault proxy's faults, each on its own against a plain echo server on loopback."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator

import pytest

from linebridge.hil.proxy import Direction, Fault, FaultKind, FaultProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    proxy = FaultProxy("127.0.0.1", server.sockets[0].getsockname()[1])
    await proxy.start()
    yield proxy
    await proxy.stop()
    server.close()
    await server.wait_closed()


async def _connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def _round_trip(reader, writer, payload: bytes = b"ping") -> float:
    start = time.perf_counter()
    writer.write(payload)
    await writer.drain()
    got = await asyncio.wait_for(reader.readexactly(len(payload)), 5)
    assert got == payload
    return time.perf_counter() - start


async def _best_rtt(reader, writer, rounds: int = 25) -> float:
    """The fastest of `rounds` round trips: scheduling noise on a busy machine only ever adds time, so
    the minimum is the closest look at what the link itself costs."""
    return min([await _round_trip(reader, writer) for _ in range(rounds)])


async def test_latency_adds_the_setting_within_two_ms(proxy):
    reader, writer = await _connect(proxy)
    baseline = await _best_rtt(reader, writer)
    handle = proxy.inject(Fault(FaultKind.LATENCY, Direction.DOWN, ms=20))
    delayed = await _best_rtt(reader, writer)
    proxy.release(handle)
    added_ms = (delayed - baseline) * 1000
    assert abs(added_ms - 20) <= 2, f"added {added_ms:.2f} ms for a 20 ms setting"
    both = proxy.inject(Fault(FaultKind.LATENCY, Direction.BOTH, ms=10))
    added_ms = (await _best_rtt(reader, writer) - baseline) * 1000
    proxy.release(both)
    assert abs(added_ms - 20) <= 4, f"10 ms each way added {added_ms:.2f} ms (two hops, ±2 ms each)"
    writer.close()


async def test_jitter_stays_inside_its_band(proxy):
    reader, writer = await _connect(proxy)
    baseline = await _best_rtt(reader, writer)
    handle = proxy.inject(Fault(FaultKind.LATENCY, Direction.UP, ms=10, jitter_ms=20))
    samples = [(await _round_trip(reader, writer) - baseline) * 1000 for _ in range(30)]
    proxy.release(handle)
    # Never less than the base delay; inside base + jitter apart from a busy machine's late wake-ups.
    assert min(samples) >= 9, samples
    assert statistics.median(samples) <= 10 + 20 + 2, samples  # uniform over 10..30 ms: median near 20
    assert statistics.pstdev(samples) > 2, "jitter varies the delay"
    writer.close()


async def test_bandwidth_cap_paces_a_transfer(proxy):
    reader, writer = await _connect(proxy)
    proxy.inject(Fault(FaultKind.BANDWIDTH, Direction.UP, bytes_per_second=200_000))
    payload = bytes(range(256)) * 400  # 102,400 bytes: about 0.5 s at the cap
    start = time.perf_counter()
    writer.write(payload)
    await writer.drain()
    got = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
    rate = len(payload) / (time.perf_counter() - start)
    assert got == payload
    assert 150_000 <= rate <= 230_000, f"{rate:.0f} B/s under a 200,000 B/s cap"
    writer.close()


async def test_stall_forwards_nothing_and_keeps_the_socket_open(proxy):
    reader, writer = await _connect(proxy)
    await _round_trip(reader, writer)
    handle = proxy.inject(Fault(FaultKind.STALL))
    forwarded = dict(proxy.stats.forwarded)
    writer.write(b"held")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(4), 0.5)
    assert proxy.stats.forwarded == forwarded and not reader.at_eof(), "stalled, not closed"
    proxy.release(handle)
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"held"
    writer.close()


async def test_half_open_link_throws_one_direction_away(proxy):
    reader, writer = await _connect(proxy)
    handle = proxy.inject(Fault(FaultKind.BLACKHOLE, Direction.UP))
    writer.write(b"x" * 100)
    await writer.drain()
    for _ in range(500):  # up to 5 s for the proxy to read what was sent
        if proxy.stats.discarded["up"] >= 100:
            break
        await asyncio.sleep(0.01)
    assert proxy.stats.discarded["up"] == 100 and not reader.at_eof()
    proxy.release(handle)
    assert await _round_trip(reader, writer, b"back") >= 0
    writer.close()


async def test_corruption_changes_exactly_n_bytes(proxy):
    reader, writer = await _connect(proxy)
    proxy.inject(Fault(FaultKind.CORRUPT, Direction.DOWN, count=5))
    payload = bytes(range(100))
    writer.write(payload)
    await writer.drain()
    got = await asyncio.wait_for(reader.readexactly(100), 5)
    assert sum(a != b for a, b in zip(payload, got, strict=True)) == 5
    assert await _round_trip(reader, writer, payload) >= 0, "later bytes pass unchanged"
    writer.close()


async def test_truncate_cuts_the_next_frame_and_closes(proxy):
    reader, writer = await _connect(proxy)
    proxy.inject(Fault(FaultKind.TRUNCATE, Direction.DOWN, keep=10))
    writer.write(bytes(100))
    await writer.drain()
    got = await asyncio.wait_for(reader.read(1000), 5)
    assert got == bytes(10)
    assert await asyncio.wait_for(reader.read(1000), 5) == b"", "the link closes after the cut frame"


async def test_reset_aborts_open_connections(proxy):
    reader, writer = await _connect(proxy)
    await _round_trip(reader, writer)
    proxy.inject(Fault(FaultKind.RESET))
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(10), 5)
    assert proxy.stats.resets == 1


async def test_refuse_resets_new_connections_only(proxy):
    old_reader, old_writer = await _connect(proxy)
    handle = proxy.inject(Fault(FaultKind.REFUSE))
    reader, writer = await _connect(proxy)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(10), 5)
    assert proxy.stats.refused == 1
    assert await _round_trip(old_reader, old_writer) >= 0, "open connections are not refused"
    proxy.release(handle)
    reader, writer = await _connect(proxy)
    assert await _round_trip(reader, writer) >= 0
    writer.close()
    old_writer.close()


def test_impossible_parameters_are_refused():
    with pytest.raises(ValueError, match="impossible"):
        Fault(FaultKind.BANDWIDTH, bytes_per_second=0)
    with pytest.raises(ValueError, match="impossible"):
        Fault(FaultKind.LATENCY, ms=-1)
