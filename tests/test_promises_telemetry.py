"""The README's telemetry promises, end to end over a real gRPC channel: every Subscribe trigger, the
batching limits, `dropped` for a slow reader, and the subscription limit."""

from __future__ import annotations

import grpc
import pytest

from linebridge.api import pb
from linebridge.model import DeviceState
from tests.conftest import sim_device, wait_for_state
from tests.gates_helpers import eventually
from tests.promises import Stubs, collect, seconds


@pytest.fixture
async def stubs(start_bridge):
    app = await start_bridge(
        [sim_device("sim-1", signals=4, rate_hz=200), sim_device("idle-1", signals=1, rate_hz=0)],
        telemetry={"max_subscriptions": 3},
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    stubs = Stubs(app.api_address)
    stubs.app = app
    yield stubs
    await stubs.close()


def _subscribe(stubs: Stubs, paths: list[str], **fields) -> grpc.aio.UnaryStreamCall:
    return stubs.telemetry.Subscribe(pb.telemetry.SubscribeRequest(paths=paths, **fields))


async def test_on_change_with_deadband_passes_only_moves_beyond_it(stubs):
    deadband = 0.3
    plain = _subscribe(stubs, ["sim-1/values/0"])
    filtered = _subscribe(
        stubs, ["sim-1/values/0"], trigger=pb.telemetry.TRIGGER_ON_CHANGE, deadband=deadband
    )
    got = await collect(filtered, lambda d: len(d.values["sim-1/values/0"]) >= 8)
    everything = await collect(plain, lambda d: len(d.values["sim-1/values/0"]) >= 8)
    plain.cancel()
    filtered.cancel()
    values = got.values["sim-1/values/0"]
    steps = [abs(b - a) for a, b in zip(values, values[1:], strict=False)]
    assert min(steps) >= deadband, f"a delivered change smaller than the deadband: {min(steps)}"
    # the unfiltered stream of the same signal does move by less than the deadband between samples
    raw = everything.values["sim-1/values/0"]
    assert min(abs(b - a) for a, b in zip(raw, raw[1:], strict=False)) < deadband


async def test_sample_trigger_delivers_one_value_per_interval(stubs):
    interval = 0.25
    stream = _subscribe(
        stubs, ["sim-1/values/1"], trigger=pb.telemetry.TRIGGER_SAMPLE, sample_interval=seconds(interval)
    )
    got = await collect(stream, lambda d: len(d.stamps["sim-1/values/1"]) >= 5)
    stream.cancel()
    stamps = got.stamps["sim-1/values/1"]
    gaps = [(b - a) / 1e9 for a, b in zip(stamps[1:], stamps[2:], strict=False)]  # after the initial value
    # The device samples at 200 Hz (5 ms); sampled at 250 ms, consecutive source times are far apart.
    assert min(gaps) >= interval * 0.8, f"samples closer than the interval: {gaps}"


async def test_heartbeat_arrives_while_a_signal_is_quiet(stubs):
    stream = _subscribe(
        stubs, ["idle-1/enabled"], trigger=pb.telemetry.TRIGGER_ON_CHANGE, heartbeat_interval=seconds(0.1)
    )
    got = await collect(stream, lambda d: d.kinds.count("heartbeat") >= 3)
    stream.cancel()
    assert got.kinds[0] == "catalog" and "sync" in got.kinds
    assert got.kinds.index("sync") < got.kinds.index("heartbeat")


async def test_max_batch_size_bounds_every_batch(stubs):
    stream = _subscribe(stubs, ["sim-1/values/*"], max_batch_size=3, max_batch_latency=seconds(0.05))
    got = await collect(stream, lambda d: len(d.batch_sizes) >= 20)
    stream.cancel()
    assert max(got.batch_sizes) <= 3
    unbounded = _subscribe(stubs, ["sim-1/values/*"], max_batch_latency=seconds(0.05))
    wide = await collect(unbounded, lambda d: len(d.batch_sizes) >= 5)
    unbounded.cancel()
    assert max(wide.batch_sizes) > 3, "without the limit, batches of this source are larger"


async def test_max_subscriptions_is_resource_exhausted(stubs):
    streams = [_subscribe(stubs, ["idle-1/*"]) for _ in range(3)]
    for stream in streams:
        await collect(stream, lambda d: "sync" in d.kinds)
    extra = _subscribe(stubs, ["idle-1/*"])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await collect(extra, lambda d: False)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    streams[0].cancel()
    await eventually(lambda: len(stubs.app.bus.subscriptions) == 2, "the freed subscription slot")
    again = _subscribe(stubs, ["idle-1/*"])
    await collect(again, lambda d: "sync" in d.kinds)
    for stream in [*streams, again]:
        stream.cancel()


async def test_a_reader_that_stops_reading_is_told_what_it_lost(start_bridge):
    app = await start_bridge(
        [sim_device("fast-1", signals=50, rate_hz=1000, rows_per_batch=10)],
        telemetry={"subscriber_queue_samples": 2_000},
    )
    await wait_for_state(app, "fast-1", DeviceState.ONLINE)
    stubs = Stubs(app.api_address)
    try:
        stream = _subscribe(stubs, ["fast-1/*"])
        seen = await collect(stream, lambda d: "sync" in d.kinds)
        # Read nothing while gRPC flow control fills up and the bridge's queue overflows.
        await eventually(lambda: app.bus.samples_dropped > 0, "samples dropped for the silent reader", 30)
        got = await collect(stream, lambda d: bool(d.dropped), timeout=30, decoded=seen)
        assert got.dropped[0].samples > 0 and got.dropped[0].total_samples >= got.dropped[0].samples
        stream.cancel()
    finally:
        await stubs.close()
