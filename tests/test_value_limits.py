"""Oversize values through a real bridge (issue 12, defect 3): an OPC UA string of 8 MB, a real gRPC client
with the default 4 MiB receive limit, and messages split below the configured size."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import grpc
import pytest

from linebridge.api import pb
from linebridge.api.convert import batch_update_chunks
from linebridge.drivers.modbus.simulator import CellPlcSimulator
from linebridge.drivers.opcua.simulator import RobotSimulator
from linebridge.model import DeviceState, Quality, SampleBatch, Signal, ValueType
from linebridge.telemetry.guard import GuardSettings, ValueGuard
from tests.conftest import sim_device, wait_for_state

EIGHT_MB = 8_000_000


@pytest.fixture
async def robot() -> AsyncIterator[RobotSimulator]:
    sim = RobotSimulator(name="big-robot", rate_hz=20)
    await sim.start()
    yield sim
    await sim.stop()


def _catalog(updates: list[pb.telemetry.TelemetryUpdate]) -> dict[int, tuple[str, int]]:
    return {
        e.alias: (e.path, e.value_type) for u in updates if u.HasField("catalog") for e in u.catalog.entries
    }


async def _initial(stub, paths: list[str], **options: int) -> list[pb.telemetry.TelemetryUpdate]:
    """Messages of a Subscribe up to and including sync."""
    out = []
    async for update in stub.Subscribe(pb.telemetry.SubscribeRequest(paths=paths, **options)):
        out.append(update)
        if update.HasField("sync"):
            return out
    raise AssertionError("stream ended before sync")


async def _program_name(app, value_check) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    record = app.registry.get("robot-1")
    while loop.time() < end:
        alias = record.signals["program/name"].alias if "program/name" in record.signals else None
        latest = app.bus.value_of(alias) if alias else None
        if latest is not None and value_check(latest[0]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the bridge never received the new program_name")


async def test_an_8mb_opcua_string_reaches_default_grpc_clients_cut_and_bad(start_bridge, robot):
    """Before: Subscribe ['*'] and Read ['*'] both ended with RESOURCE_EXHAUSTED (8000100 vs. 4194304)."""
    app = await start_bridge([{"id": "robot-1", "driver": "opcua", "endpoint": robot.endpoint}])
    await wait_for_state(app, "robot-1", DeviceState.ONLINE)
    await robot.set_value("program_name", "x" * EIGHT_MB)
    await _program_name(app, lambda v: isinstance(v, str) and v.startswith("xxxx"))
    async with grpc.aio.insecure_channel(app.api_address) as channel:  # default options: 4 MiB receive
        stub = pb.telemetry_grpc.TelemetryServiceStub(channel)
        updates = await _initial(stub, ["*"])
        read = await stub.Read(pb.telemetry.ReadRequest(paths=["*"]))
    catalog = _catalog(updates)
    program = [
        (v, q)
        for u in updates
        if u.HasField("batch")
        for v, q in _strings_with_quality(u.batch, catalog)
        if v[0] == "robot-1/program/name"
    ]
    assert program, "no program_name in the initial values"
    (_, text), quality = program[-1]
    assert len(text.encode()) == 65_536 and quality == pb.common.QUALITY_BAD
    entry = next(v for v in read.values if v.path == "robot-1/program/name")
    assert len(entry.value.string_value) == 65_536 and entry.quality == pb.common.QUALITY_BAD
    assert app.sessions["robot-1"].guard.counts["oversize"] >= 1


def _strings_with_quality(batch: pb.telemetry.SampleBatch, catalog: dict[int, tuple[str, int]]):
    """((path, value), quality) of every string sample of a decoded batch (the string column in order)."""
    strings = iter(batch.string_values)
    return [
        ((catalog[a][0], next(strings)), batch.qualities[i] if batch.qualities else 1)
        for i, a in enumerate(batch.aliases)
        if catalog[a][1] == pb.common.VALUE_TYPE_STRING
    ]


async def test_subscribe_and_read_split_below_the_message_limit(start_bridge):
    """Six 60 KB labels do not fit in one 256 KiB message: Subscribe sends several, Read pages."""
    devices = [sim_device(f"big-{i}", signals=2, rate_hz=5) for i in range(6)]
    app = await start_bridge(devices, telemetry={"max_message_bytes": 262_144})
    for i in range(6):
        await wait_for_state(app, f"big-{i}", DeviceState.ONLINE)
        label = app.registry.get(f"big-{i}").signals["label"]
        app.bus.publish(
            SampleBatch(f"big-{i}", [label.alias], [str(i) * 60_000], [1], None, ValueType.STRING)
        )
    options = [("grpc.max_receive_message_length", 262_144)]
    async with grpc.aio.insecure_channel(app.api_address, options=options) as channel:
        stub = pb.telemetry_grpc.TelemetryServiceStub(channel)
        updates = await _initial(stub, ["big-*/label"])
        small = await _initial(stub, ["big-*/label"], max_message_bytes=140_000)
        pages, token = [], ""
        while True:
            response = await stub.Read(
                pb.telemetry.ReadRequest(paths=["big-*/label"], page_token=token, max_response_bytes=140_000)
            )
            pages.append(response)
            token = response.next_page_token
            if not token:
                break
    sizes = [u.ByteSize() for u in updates if u.HasField("batch")]
    assert len(sizes) >= 2 and max(sizes) <= 262_144
    small_sizes = [u.ByteSize() for u in small if u.HasField("batch")]
    assert len(small_sizes) >= 3 and max(small_sizes) <= 140_000
    labels = sorted(v for u in updates if u.HasField("batch") for v in u.batch.string_values)
    assert labels == [str(i) * 60_000 for i in range(6)]
    assert len(pages) == 3 and all(p.ByteSize() <= 140_000 for p in pages)
    assert sorted(v.path for p in pages for v in p.values) == [f"big-{i}/label" for i in range(6)]


async def test_a_bad_page_token_is_invalid_argument(start_bridge, robot):
    app = await start_bridge([{"id": "robot-1", "driver": "opcua", "endpoint": robot.endpoint}])
    await wait_for_state(app, "robot-1", DeviceState.ONLINE)
    async with grpc.aio.insecure_channel(app.api_address) as channel:
        stub = pb.telemetry_grpc.TelemetryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Read(pb.telemetry.ReadRequest(paths=["*"], page_token="from:99999"))
        with pytest.raises(grpc.aio.AioRpcError) as small:
            await stub.Read(pb.telemetry.ReadRequest(paths=["*"], max_response_bytes=1000))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "page_token" in info.value.details()
    assert (
        small.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        and "max_response_bytes" in small.value.details()
    )


# -- the driver boundary, one piece ----------------------------------------------------------------


def _guard(**ranges: tuple[float | None, float | None]) -> ValueGuard:
    guard = ValueGuard("plc-1", GuardSettings(max_value_bytes=1024))
    signals = [
        Signal(path, ValueType.DOUBLE, minimum=lo, maximum=hi, alias=i + 1)
        for i, (path, (lo, hi)) in enumerate(ranges.items())
    ]
    guard.use(signals)
    return guard


def test_non_finite_doubles_are_bad_and_counted() -> None:
    """Before: conveyor/speed = inf passed as GOOD (risk 4)."""
    guard = _guard()
    batch = SampleBatch("plc-1", [1, 2, 3], [1.0, math.inf, math.nan], [5, 5, 5], None, ValueType.DOUBLE)
    out = guard.check(batch)
    assert out.qualities == [Quality.GOOD, Quality.BAD, Quality.BAD]
    assert guard.counts["non_finite"] == 2


def test_integers_beyond_int64_are_bad_and_zero() -> None:
    out = _guard().check(SampleBatch("plc-1", [1, 2], [2**64, -5], [5, 5], None, ValueType.INT))
    assert out.values == [0, -5] and out.qualities == [Quality.BAD, Quality.GOOD]


def test_values_outside_the_declared_range_are_uncertain() -> None:
    guard = _guard(speed=(0.0, 2.0), level=(None, 10.0))
    batch = SampleBatch("plc-1", [1, 2, 1], [2.5, 3.0, 1.0], [5, 5, 5], None, ValueType.DOUBLE)
    out = guard.check(batch)
    assert out.qualities == [Quality.UNCERTAIN, Quality.GOOD, Quality.GOOD]
    assert guard.counts["out_of_range"] == 1


def test_a_clean_batch_passes_as_the_same_object() -> None:
    guard = _guard(speed=(0.0, 2.0))
    batch = SampleBatch("plc-1", [1], [1.5], [5], None, ValueType.DOUBLE)
    assert guard.check(batch) is batch


def test_oversize_strings_in_mixed_batches_and_utf8_edges() -> None:
    guard = ValueGuard("d", GuardSettings(max_value_bytes=1024, oversize="bad"))
    batch = SampleBatch("d", [1, 2, 3], ["é" * 600, 2.0, "ok"], [5, 5, 5], None, None)
    out = guard.check(batch)
    assert out.values == ["", 2.0, "ok"] and out.qualities == [Quality.BAD, Quality.GOOD, Quality.GOOD]
    cut = ValueGuard("d", GuardSettings(max_value_bytes=1025)).check(
        SampleBatch("d", [1], ["é" * 600], [5], None, ValueType.STRING)
    )
    assert cut.values == ["é" * 512]  # 1024 bytes: the half character at byte 1025 is dropped


def test_timestamps_outside_int64_are_clamped_and_uncertain() -> None:
    guard = ValueGuard("d", GuardSettings())
    out = guard.check(SampleBatch("d", [1, 2], [True, False], [2**64, 7], None, ValueType.BOOL))
    assert out.timestamps == [2**63 - 1, 7] and out.qualities == [Quality.UNCERTAIN, Quality.GOOD]


def test_chunks_split_a_batch_that_alone_is_too_large() -> None:
    types = {a: ValueType.STRING for a in range(1, 9)}
    batch = SampleBatch("d", list(range(1, 9)), ["y" * 1000] * 8, [1] * 8, None, ValueType.STRING)
    chunks = batch_update_chunks([batch], types, 2500)
    assert len(chunks) >= 4 and all(len(c) <= 2500 for c in chunks)
    decoded = [pb.telemetry.TelemetryUpdate.FromString(c).batch for c in chunks]
    assert [a for d in decoded for a in d.aliases] == list(range(1, 9))


async def test_modbus_inf_and_out_of_range_values_are_not_good(start_bridge):
    """Before: conveyor/speed = inf on a point whose map range is 0-2 m/s read as GOOD (risk 4)."""
    sim = CellPlcSimulator(units=(1,), seed=3)
    await sim.start()
    try:
        device = {"id": "plc-1", "driver": "modbus", "endpoint": sim.endpoint, "options": {"map": "cell-plc"}}
        app = await start_bridge([device])
        await wait_for_state(app, "plc-1", DeviceState.ONLINE)
        alias = app.registry.get("plc-1").signals["conveyor/speed"].alias
        seen: list[tuple[float, int]] = []

        async def quality_of(speed: float) -> int:
            sim.models[1].speed = speed
            for _ in range(400):
                found = app.bus.value_of(alias)
                if found is not None and (found[0] == speed or math.isnan(speed) and math.isnan(found[0])):
                    seen.append((found[0], found[2]))
                    return found[2]
                await asyncio.sleep(0.025)
            raise AssertionError(f"conveyor/speed never read {speed}")

        assert await quality_of(1.5) == Quality.GOOD
        assert await quality_of(2.5) == Quality.UNCERTAIN
        assert await quality_of(math.inf) == Quality.BAD
        assert app.sessions["plc-1"].guard.counts["non_finite"] >= 1
        assert app.sessions["plc-1"].guard.counts["out_of_range"] >= 1
    finally:
        await sim.stop()
