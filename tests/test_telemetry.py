"""The telemetry bus on its own: selection, drop-oldest, triggers, catalog updates, never blocking."""

from __future__ import annotations

import asyncio

import pytest

from linebridge.errors import InvalidArgument, NotFound, ResourceExhausted
from linebridge.model import DeviceDescription, DeviceKind, SampleBatch, Signal, ValueType
from linebridge.registry import DeviceRecord, DeviceRegistry
from linebridge.telemetry.bus import (
    BatchUpdate,
    CatalogUpdate,
    DroppedUpdate,
    HeartbeatUpdate,
    SubscriptionOptions,
    SyncUpdate,
    TelemetryBus,
    Trigger,
)


def make_bus(queue_limit: int = 1_000, max_subscriptions: int = 10) -> TelemetryBus:
    registry = DeviceRegistry()
    bus = TelemetryBus(registry, queue_limit=queue_limit, max_subscriptions=max_subscriptions)
    add_device(bus, "r1", ["axes/1/pos", "axes/2/pos", "temp"])
    add_device(bus, "r2", ["axes/1/pos"])
    return bus


def add_device(bus: TelemetryBus, device_id: str, paths: list[str]) -> list[int]:
    bus.registry.add(DeviceRecord(id=device_id, driver="sim", endpoint=f"sim://{device_id}"))
    signals = [Signal(p, ValueType.DOUBLE) for p in paths]
    bus.registry.set_description(device_id, DeviceDescription(kind=DeviceKind.ROBOT, signals=signals))
    return [s.alias for s in signals]


def aliases(bus: TelemetryBus, device_id: str) -> list[int]:
    return [s.alias for s in bus.registry.get(device_id).signals.values()]


def batch(bus: TelemetryBus, device_id: str, values: list[float], ts: int = 1) -> SampleBatch:
    a = aliases(bus, device_id)[: len(values)]
    return SampleBatch(device_id, a, values, [ts] * len(a), value_type=ValueType.DOUBLE)


async def take(updates, n: int) -> list:
    return [await asyncio.wait_for(anext(updates), 2) for _ in range(n)]


async def test_stream_sends_catalog_initial_values_sync_then_batches():
    bus = make_bus()
    bus.publish(batch(bus, "r1", [1.0, 2.0, 3.0]))
    sub = bus.subscribe(["r1/*"], SubscriptionOptions(max_latency=0.001))
    updates = sub.updates()
    catalog, initial, sync = await take(updates, 3)
    assert isinstance(catalog, CatalogUpdate) and {p for _, p, _ in catalog.entries} == {
        "r1/axes/1/pos",
        "r1/axes/2/pos",
        "r1/temp",
    }
    assert isinstance(initial, BatchUpdate) and initial.batches[0].values == [1.0, 2.0, 3.0]
    assert isinstance(sync, SyncUpdate)
    bus.publish(batch(bus, "r2", [9.0]))  # not selected
    bus.publish(batch(bus, "r1", [4.0, 5.0, 6.0]))
    (live,) = await take(updates, 1)
    assert isinstance(live, BatchUpdate) and [b.values for b in live.batches] == [[4.0, 5.0, 6.0]]
    sub.close()


async def test_partial_selection_filters_samples():
    bus = make_bus()
    sub = bus.subscribe(["*/axes/*/pos"], SubscriptionOptions(max_latency=0.001))
    updates = sub.updates()
    await take(updates, 2)  # catalog, sync (no values yet)
    bus.publish(batch(bus, "r1", [1.0, 2.0, 3.0]))
    (live,) = await take(updates, 1)
    assert live.batches[0].values == [1.0, 2.0]
    assert live.batches[0].aliases == aliases(bus, "r1")[:2]
    sub.close()


async def test_slow_subscriber_drops_oldest_and_is_told():
    bus = make_bus(queue_limit=1_000)
    slow = bus.subscribe(["r1/*"], SubscriptionOptions(max_latency=0.001))
    fast = bus.subscribe(["r1/*"], SubscriptionOptions(max_latency=0.001))
    slow_updates, fast_updates = slow.updates(), fast.updates()
    await take(slow_updates, 2)
    await take(fast_updates, 2)
    for i in range(1_000):  # 3,000 samples into a 1,000-sample queue; publish never waits
        bus.publish(batch(bus, "r1", [float(i)] * 3))
        if i % 10 == 0:
            fast_batches = (await take(fast_updates, 1))[0].batches
            assert fast_batches[-1].values[0] == float(i)
    assert slow.queued <= 1_000
    dropped = await take(slow_updates, 1)
    assert isinstance(dropped[0], DroppedUpdate) and dropped[0].samples == 3_000 - slow.queued - 0
    rest = (await take(slow_updates, 1))[0]
    assert isinstance(rest, BatchUpdate)
    assert rest.batches[-1].values[0] == 999.0  # the newest data survived
    assert bus.samples_dropped == dropped[0].total
    assert fast.dropped_total == 0
    slow.close()
    fast.close()


async def test_on_change_with_deadband():
    bus = make_bus()
    sub = bus.subscribe(
        ["r1/temp"], SubscriptionOptions(trigger=Trigger.ON_CHANGE, deadband=0.5, max_latency=0.001)
    )
    updates = sub.updates()
    await take(updates, 2)
    temp = aliases(bus, "r1")[2]
    for value in (20.0, 20.2, 20.4, 21.0, 21.0, 20.6):
        bus.publish(SampleBatch("r1", [temp], [value], [1]))
        await asyncio.sleep(0.005)
    got = []
    while len(got) < 2:
        got += [v for b in (await take(updates, 1))[0].batches for v in b.values]
    assert got == [20.0, 21.0]
    sub.close()


async def test_sampled_trigger_sends_latest_values():
    bus = make_bus()
    sub = bus.subscribe(["r2/*"], SubscriptionOptions(trigger=Trigger.SAMPLE, sample_interval=0.02))
    updates = sub.updates()
    await take(updates, 2)
    for v in range(50):
        bus.publish(batch(bus, "r2", [float(v)]))
    (sample,) = await take(updates, 1)
    assert sample.batches[0].values == [49.0]
    sub.close()


async def test_heartbeat_when_idle():
    bus = make_bus()
    sub = bus.subscribe(["r2/*"], SubscriptionOptions(heartbeat_interval=0.02))
    updates = sub.updates()
    await take(updates, 2)
    (beat,) = await take(updates, 1)
    assert isinstance(beat, HeartbeatUpdate) and beat.time_ns > 0
    sub.close()


async def test_catalog_grows_when_a_device_appears():
    bus = make_bus()
    sub = bus.subscribe(["*"], SubscriptionOptions(max_latency=0.001))
    updates = sub.updates()
    first = (await take(updates, 2))[0]
    assert len(first.entries) == 4
    new_aliases = add_device(bus, "r3", ["x"])
    (delta,) = await take(updates, 1)
    assert isinstance(delta, CatalogUpdate) and [a for a, _, _ in delta.entries] == new_aliases
    bus.registry.remove("r3")
    (gone,) = await take(updates, 1)
    assert gone.removed == new_aliases
    sub.close()


def test_aliases_are_stable_across_redescription():
    bus = make_bus()
    before = aliases(bus, "r1")
    signals = [Signal(p, ValueType.DOUBLE) for p in ("temp", "axes/1/pos", "axes/2/pos", "new")]
    bus.registry.set_description("r1", DeviceDescription(kind=DeviceKind.ROBOT, signals=signals))
    after = {s.path: s.alias for s in bus.registry.get("r1").signals.values()}
    assert [after["axes/1/pos"], after["axes/2/pos"], after["temp"]] == before
    assert after["new"] not in before


def test_bad_selections():
    bus = make_bus(max_subscriptions=1)
    with pytest.raises(InvalidArgument):
        bus.subscribe(["r1//x"], SubscriptionOptions())
    with pytest.raises(NotFound):
        bus.subscribe(["r1/nope"], SubscriptionOptions())
    with pytest.raises(NotFound):
        bus.read_cached(["zz/*"])
    bus.subscribe(["*"], SubscriptionOptions())
    with pytest.raises(ResourceExhausted):
        bus.subscribe(["*"], SubscriptionOptions())


def test_publish_with_mismatched_columns_is_refused():
    bus = make_bus()
    with pytest.raises(ValueError):
        bus.publish(SampleBatch("r1", aliases(bus, "r1"), [1.0], [1, 1, 1]))
