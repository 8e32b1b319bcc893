"""gRPC input limits: message size, paths per request, subscriptions per client, streams per connection,
keepalive abuse. The client that breaks a limit is refused; the bridge keeps serving everyone else."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from linebridge.api import pb
from linebridge.client.raw import RawClient
from linebridge.model import DeviceState
from tests.conftest import sim_device, wait_for_state
from tests.security_helpers import rpc_error, write_tokens

Code = grpc.StatusCode
LIMITS = {
    "max_subscriptions_per_client": 2,
    "max_paths_per_subscription": 4,
    "max_concurrent_streams": 8,
    "min_ping_interval_seconds": 5,
    "max_ping_strikes": 1,
}


@pytest.fixture
async def start_limited(start_bridge, tmp_path):
    """A bridge with small limits and two viewer identities, greedy and modest, each with its own channel."""
    made: list[RawClient] = []

    async def start(**limits):
        tokens = write_tokens(tmp_path / "tokens", ["greedy", "modest"])
        app = await start_bridge(
            [sim_device("sim-1", signals=3, rate_hz=50)],
            grpc={"limits": {**LIMITS, **limits}},
            security={
                "tokens_file": str(tmp_path / "tokens"),
                "identities": {"token:greedy": "viewer", "token:modest": "viewer"},
            },
        )
        await wait_for_state(app, "sim-1", DeviceState.ONLINE)
        clients = {name: RawClient(app.api_address, token=token) for name, token in tokens.items()}
        made.extend(clients.values())
        return app, clients, tokens

    yield start
    for client in made:
        await client.close()


async def healthy(client: RawClient) -> None:
    """The other client still lists, reads and subscribes."""
    assert [d.id for d in await client.list_devices()] == ["sim-1"]
    stream = client.telemetry.Subscribe(pb.telemetry.SubscribeRequest(paths=["sim-1/values/*"]))
    assert (await stream.read()).WhichOneof("update") == "catalog"
    stream.cancel()


async def test_too_many_paths_is_resource_exhausted(start_limited):
    _, clients, _ = await start_limited()
    paths = [f"sim-1/values/{i}" for i in range(5)]
    for call in (
        clients["greedy"].telemetry.Read(pb.telemetry.ReadRequest(paths=paths)),
        clients["greedy"].telemetry.Subscribe(pb.telemetry.SubscribeRequest(paths=paths)).read(),
    ):
        error = await rpc_error(call)
        assert (
            error.code() is Code.RESOURCE_EXHAUSTED and "5 paths in one request; at most 4" in error.details()
        )
    await healthy(clients["modest"])


async def test_subscriptions_per_client(start_limited):
    app, clients, _ = await start_limited()
    greedy = clients["greedy"]
    request = pb.telemetry.SubscribeRequest(paths=["sim-1/*"])
    streams = [greedy.telemetry.Subscribe(request) for _ in range(2)]
    for stream in streams:
        assert (await stream.read()).WhichOneof("update") == "catalog"
    error = await rpc_error(greedy.telemetry.Subscribe(request).read())
    assert error.code() is Code.RESOURCE_EXHAUSTED and "token:greedy already has 2 open" in error.details()
    watch = await rpc_error(greedy.devices.WatchDevices(pb.device.WatchDevicesRequest()).read())
    assert watch.code() is Code.RESOURCE_EXHAUSTED  # WatchDevices counts too
    await healthy(clients["modest"])  # another identity has its own allowance
    streams[0].cancel()
    for _ in range(500):  # the slot frees when the server sees the cancel
        if app.api.limiter.open.get("token:greedy") == 1:
            break
        await asyncio.sleep(0.01)
    again = greedy.telemetry.Subscribe(request)
    assert (await again.read()).WhichOneof("update") == "catalog"
    for stream in (streams[1], again):
        stream.cancel()


async def test_message_larger_than_the_limit(start_limited):
    _, clients, _ = await start_limited()
    huge = pb.device.ListDevicesRequest(
        id_glob="x" * (1 << 20)
    )  # over the default 1 MB (grpc.max_receive_message_bytes)
    error = await rpc_error(clients["greedy"].devices.ListDevices(huge))
    assert error.code() is Code.RESOURCE_EXHAUSTED
    await healthy(clients["modest"])


async def test_streams_per_connection_queue_at_the_client_and_spare_others(start_limited):
    app, clients, tokens = await start_limited(max_concurrent_streams=2, max_subscriptions_per_client=4)
    # A connection of its own: channels with equal arguments would share one connection (and its limit).
    channel = grpc.aio.insecure_channel(app.api_address, options=[("grpc.use_local_subchannel_pool", 1)])
    auth = (("authorization", f"Bearer {tokens['greedy']}"),)
    try:
        telemetry, bridge = (
            pb.telemetry_grpc.TelemetryServiceStub(channel),
            pb.bridge_grpc.BridgeServiceStub(channel),
        )
        streams = [
            telemetry.Subscribe(pb.telemetry.SubscribeRequest(paths=["sim-1/*"]), metadata=auth)
            for _ in range(2)
        ]
        for stream in streams:
            await stream.read()
        # HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: while both streams are open a third call gets no stream.
        waiting = await rpc_error(bridge.GetInfo(pb.bridge.GetInfoRequest(), metadata=auth, timeout=1))
        assert waiting.code() is Code.DEADLINE_EXCEEDED
        await healthy(clients["modest"])  # another connection is not affected
        streams[0].cancel()
        info = await bridge.GetInfo(pb.bridge.GetInfoRequest(), metadata=auth, timeout=30)
        assert info.bridge_id == "test-bridge"
        streams[1].cancel()
    finally:
        await channel.close()


async def test_ping_flood_gets_goaway_and_others_carry_on(start_limited):
    app, clients, tokens = await start_limited()
    # Keepalive pings every 50 ms on an idle stream, far below the 5 s the bridge permits (gRPC A8):
    # after max_ping_strikes the bridge sends GOAWAY ENHANCE_YOUR_CALM and closes the connection.
    flood = grpc.aio.insecure_channel(
        app.api_address,
        options=[
            ("grpc.keepalive_time_ms", 50),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ],
    )
    try:
        watch = pb.device_grpc.DeviceServiceStub(flood).WatchDevices(
            pb.device.WatchDevicesRequest(),
            metadata=(("authorization", f"Bearer {tokens['greedy']}"),),
            timeout=30,
        )
        error = await rpc_error(watch.read())  # no device changes: the stream stays idle until the GOAWAY
    finally:
        await flood.close()
    # "Too many pings" when the client reads the GOAWAY first, a closed socket when it sees the close first.
    assert error.code() is Code.UNAVAILABLE
    await healthy(clients["modest"])


async def test_anonymous_subscriptions_are_counted_per_address_across_connections(start_bridge):
    """Issue 12, risk 3: ten connections of one local process took every subscription slot."""
    app = await start_bridge(
        [sim_device("sim-1", signals=2, rate_hz=50)],
        grpc={"limits": {"max_subscriptions_per_client": 2, "max_subscriptions_per_address": 5}},
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    request = pb.telemetry.SubscribeRequest(paths=["sim-1/*"])
    # Three connections from 127.0.0.1 (a local subchannel pool each: gRPC would share one otherwise).
    channels = [
        grpc.aio.insecure_channel(app.api_address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(3)
    ]
    try:
        stubs = [pb.telemetry_grpc.TelemetryServiceStub(channel) for channel in channels]
        streams = [stubs[n // 2].Subscribe(request) for n in range(5)]  # 2 + 2 + 1
        for stream in streams:
            assert (await stream.read()).WhichOneof("update") == "catalog"
        assert len({k for k in app.api.limiter.open if not k.startswith("address:")}) == 3
        error = await rpc_error(stubs[2].Subscribe(request).read())
        assert error.code() is Code.RESOURCE_EXHAUSTED
        assert "127.0.0.1 already has 5 open subscription streams" in error.details()
        assert "max_subscriptions_per_address" in error.details()
        for stream in streams:
            stream.cancel()
    finally:
        for channel in channels:
            await channel.close()
