"""LocateLoad, zone events and the `where` / `fleet` commands, on AGVs driven through a real broker."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

import grpc
import pytest

from linebridge.api import pb
from linebridge.app import BridgeApp
from linebridge.cli import transport as transport_cli
from linebridge.client import AsyncClient, NotFound
from linebridge.client.raw import RawClient
from linebridge.drivers.vda5050.stations import load_action, zones
from linebridge.model import DeviceState
from tests.conftest import BridgeFactory, wait_for_state
from tests.mqtt_broker import Broker
from tests.vda5050_helpers import finished, fleet_device, order_json, order_spec, until


async def test_a_load_is_located_on_board_then_at_its_drop_point_with_zone_events(
    broker: Broker,
    fleet,
    start_bridge: BridgeFactory,
    client_for: Callable[[BridgeApp], RawClient],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = await start_bridge([fleet_device(broker)], transport={"zones": zones(), "interval_seconds": 0.05})
    await wait_for_state(app, "agv-001", DeviceState.ONLINE)
    client = client_for(app)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await client.transport.LocateLoad(pb.transport.LocateLoadRequest(load_id="BODY-9"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND

    events: list[pb.transport.ZoneEvent] = []

    async def watch() -> None:
        async for event in client.transport.WatchZones(
            pb.transport.WatchZonesRequest(zones=["goods-in", "body-shop"])
        ):
            events.append(event)

    watcher = asyncio.create_task(watch())
    text = order_json(
        "agv-001",
        "o-t",
        ["goods-in", "body-shop"],
        actions={0: [load_action("pick", "p", "BODY-9")], 1: [load_action("drop", "d", "BODY-9")]},
    )
    record, _ = app.commands.submit(order_spec("agv-001", text))
    await until(lambda: "BODY-9" in app.transport.loads_of(app.registry.get("agv-001")), what="the pick")
    found = await client.transport.LocateLoad(pb.transport.LocateLoadRequest(load_id="BODY-9"))
    assert found.on_board and found.device_id == "agv-001"
    assert found.location.map_id == "plant" and "goods-in" in found.location.zones
    await finished(record)
    assert record.state.name == "SUCCEEDED", record.error_message
    await until(lambda: not app.transport.loads_of(app.registry.get("agv-001")), what="the drop")
    await until(lambda: app.transport.locate("BODY-9").on_board is False, what="the drop noticed")
    found = await client.transport.LocateLoad(pb.transport.LocateLoadRequest(load_id="BODY-9"))
    assert not found.on_board and found.location.zones == ["body-shop"]
    assert abs(found.location.x - 24.0) < 1e-6

    def seen(kind: int, zone: str, load: str) -> bool:
        return any(
            e.kind == kind and e.zone == zone and e.load_id == load and e.device_id == "agv-001"
            for e in events
        )

    await until(lambda: seen(2, "goods-in", "") and seen(1, "body-shop", "BODY-9"), what="zone events")
    assert seen(2, "goods-in", "BODY-9") and seen(1, "body-shop", "")
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)

    async with AsyncClient(app.api_address) as sdk:
        assert await transport_cli.where(sdk, argparse.Namespace(load_id="BODY-9")) == 0
        assert "BODY-9: dropped by agv-001 at plant (24.00, 0.00)" in capsys.readouterr().out
        assert await transport_cli.fleet(sdk, argparse.Namespace()) == 0
        with pytest.raises(NotFound, match="BODY-404"):
            await sdk.locate_load("BODY-404")
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["AGV", "STATE", "MAP"]
    row = next(line for line in table if line.startswith("agv-002"))
    assert "ONLINE" in row and "body-shop" in row and "100.0%" in row


async def test_agv_signals_are_ordinary_signals_for_subscribe_read_and_the_uplink(
    broker: Broker,
    fleet,
    consumer,
    start_bridge: BridgeFactory,
    client_for: Callable[[BridgeApp], RawClient],
    tmp_path,
) -> None:
    from linebridge.api import pb as api
    from tests.mqtt_broker import uplink_section

    app = await start_bridge([fleet_device(broker)], uplink=uplink_section(broker, tmp_path / "o.sqlite"))
    await wait_for_state(app, "agv-002", DeviceState.ONLINE)
    client = client_for(app)
    seen: dict[str, object] = {}
    async with asyncio.timeout(15):
        async for item in client.samples(["agv-002/position/*", "agv-002/battery/charge"]):
            if not isinstance(item, str):
                seen[item.path] = item.value
            if {"agv-002/position/x", "agv-002/position/map_id", "agv-002/battery/charge"} <= set(seen):
                break
    assert seen["agv-002/position/x"] == 24.0 and seen["agv-002/position/map_id"] == "plant"
    read = await client.telemetry.Read(
        api.telemetry.ReadRequest(paths=["agv-002/load/count"], from_device=True)
    )
    assert read.values[0].value.int_value == 0
    await consumer.wait_for(
        lambda: any(s.device == "agv-002" and s.name == "position/x" for s in consumer.samples),
        what="DDATA of an AGV",
    )
    (birth,) = consumer.of("DBIRTH", device="agv-002")[:1]
    assert {"position/x", "load/ids", "errors/text", "order/id"} <= {m.name for m in birth.payload.metrics}
    assert not consumer.errors


async def test_list_zones_gives_the_configured_polygons_per_map_to_the_api_sdk_and_cli(
    start_bridge: BridgeFactory,
    client_for: Callable[[BridgeApp], RawClient],
    capsys: pytest.CaptureFixture[str],
) -> None:
    configured = {
        "plant": {"paint": [[10, 0], [14, 0], [14, 3]], "body-shop": [[0, 0], [4, 0], [4, 4], [0, 4]]},
        "yard": {"gate": [[-1, -1], [1, -1], [0, 2.5]]},
    }
    app = await start_bridge([], transport={"zones": configured})
    client = client_for(app)
    every = (await client.transport.ListZones(pb.transport.ListZonesRequest())).zones
    assert [(z.map_id, z.name) for z in every] == [
        ("plant", "body-shop"),
        ("plant", "paint"),
        ("yard", "gate"),
    ]
    assert [(p.x, p.y) for p in every[2].points] == [(-1.0, -1.0), (1.0, -1.0), (0.0, 2.5)]
    yard = (await client.transport.ListZones(pb.transport.ListZonesRequest(map_id="yard"))).zones
    assert [z.name for z in yard] == ["gate"]
    assert list((await client.transport.ListZones(pb.transport.ListZonesRequest(map_id="moon"))).zones) == []
    async with AsyncClient(app.api_address) as sdk:
        assert [z.name for z in await sdk.zones("plant")] == ["body-shop", "paint"]
        assert await transport_cli.zones(sdk, argparse.Namespace(map="yard")) == 0
        assert capsys.readouterr().out == "yard  gate  (-1, -1) (1, -1) (0, 2.5)\n"
        assert await transport_cli.zones(sdk, argparse.Namespace(map="moon")) == 0
        assert capsys.readouterr().out == "no zones on map moon\n"
