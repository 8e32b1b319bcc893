"""The README's promises about the bridge as a whole, end to end: command limits and history, /metrics over
HTTP with every documented name, the bridge's own mDNS announcement, health Watch, the CLI's token
options, the demo's cell options, and the uplink's group, edge node and deadbands as a broker sees them."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from zeroconf import ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

from linebridge.api import pb
from linebridge.model import DeviceState
from tests.conftest import sim_device, wait_for_state
from tests.gates_helpers import callers, eventually
from tests.mqtt_broker import uplink_section
from tests.opcua_helpers import ThreadedSimulator
from tests.promises import Stubs
from tests.test_cli import run
from tests.test_demo import DEMO, online_devices, sim_pids

ROOT = Path(__file__).resolve().parent.parent


def _slow(device: str, seconds: float = 5.0) -> pb.command.ExecuteRequest:
    arg = pb.common.Value(double_value=seconds)
    return pb.command.ExecuteRequest(
        device_id=device, invoke=pb.command.InvokeAction(method="Slow", args=[arg])
    )


async def _first_event(stubs: Stubs, request: pb.command.ExecuteRequest) -> pb.command.CommandEvent:
    stream = stubs.commands.Execute(request)
    event = await stream.read()
    stubs.open_calls.append(stream)
    return event


@pytest.fixture
async def stubs(start_bridge):
    app = await start_bridge(
        [sim_device("sim-1", signals=1, rate_hz=10)],
        commands={"queue_limit": 2, "history": 10, "max_timeout_seconds": 30, "default_timeout_seconds": 10},
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    stubs = Stubs(app.api_address)
    stubs.app, stubs.open_calls = app, []
    yield stubs
    for call in stubs.open_calls:
        call.cancel()
    await stubs.close()


async def test_a_full_command_queue_is_resource_exhausted(stubs):
    running = await _first_event(stubs, _slow("sim-1"))
    queued = [await _first_event(stubs, _slow("sim-1")) for _ in range(2)]
    assert running.command_id and all(e.state == pb.command.COMMAND_STATE_QUEUED for e in queued)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _first_event(stubs, _slow("sim-1"))
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue" in info.value.details()


async def test_a_timeout_above_the_maximum_is_invalid_argument(stubs):
    request = _slow("sim-1", 0.1)
    request.timeout.FromSeconds(31)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _first_event(stubs, request)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "30" in info.value.details()
    (refused,) = (await stubs.commands.ListCommands(pb.command.ListCommandsRequest())).commands
    assert refused.state == pb.command.COMMAND_STATE_REJECTED and "got 31" in refused.error.message


async def test_history_keeps_the_newest_finished_commands(stubs):
    ids = []
    for _ in range(12):
        events = [e async for e in stubs.commands.Execute(_slow("sim-1", 0.0))]
        assert events[-1].state == pb.command.COMMAND_STATE_SUCCEEDED
        ids.append(events[-1].command_id)
    listed = await stubs.commands.ListCommands(pb.command.ListCommandsRequest())
    assert sorted(c.command_id for c in listed.commands) == sorted(ids[-10:])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.commands.GetCommand(pb.command.GetCommandRequest(command_id=ids[0]))
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


def _documented_metrics() -> set[str]:
    """Every metric name the README's Metrics section lists, with `{a,b}` alternatives expanded."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for raw in re.findall(r"`(linebridge_[a-z_{},]+)", section):
        # `name_{a,b}_total` lists alternatives (a brace after "_"); `name{label,label}` lists labels.
        match = re.fullmatch(r"([a-z_]*_)\{([a-z_,]+)\}([a-z_]*)", raw)
        if match:
            names |= {f"{match[1]}{alt}{match[3]}" for alt in match[2].split(",")}
        else:
            names.add(raw.split("{", 1)[0])
    return names


async def test_metrics_over_http_carry_every_documented_name(start_bridge, broker, tmp_path):
    app = await start_bridge(
        [sim_device("sim-1", signals=1, rate_hz=20)],
        metrics={"enabled": True, "address": "127.0.0.1:0"},
        uplink=uplink_section(broker, tmp_path / "outbox.sqlite"),
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    stubs = Stubs(app.api_address)
    events = [e async for e in stubs.commands.Execute(_slow("sim-1", 0.0))]
    await stubs.close()
    assert events[-1].state == pb.command.COMMAND_STATE_SUCCEEDED
    url = f"http://127.0.0.1:{app.metrics_port}/metrics"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    lines = body.splitlines()
    # Declared families count too: a labelled counter has no sample until its first increment.
    exposed = {line.split()[2] for line in lines if line.startswith("# TYPE ")}
    exposed |= {line.split("{", 1)[0].split(" ", 1)[0] for line in lines if not line.startswith("#")}
    exposed |= {re.sub(r"_(bucket|count|sum|created)$", "", name) for name in exposed}
    documented = _documented_metrics()
    assert len(documented) >= 15, documented
    assert documented <= exposed, f"documented but not exposed: {sorted(documented - exposed)}"


async def test_the_bridge_announces_itself_over_mdns(start_bridge):
    app = await start_bridge(
        [],
        discovery={"enabled": True, "advertise": True, "interfaces": ["127.0.0.1"]},
        bridge={"id": "promise-b"},
    )
    found: list[str] = []

    def on_change(zeroconf, service_type, name, state_change):  # noqa: ARG001
        if state_change is ServiceStateChange.Added:
            found.append(name)

    zeroconf = AsyncZeroconf(interfaces=["127.0.0.1"])
    browser = AsyncServiceBrowser(zeroconf.zeroconf, "_linebridge._tcp.local.", handlers=[on_change])
    try:
        await eventually(
            lambda: "promise-b._linebridge._tcp.local." in found, "the bridge's announcement", 15
        )
        info = await zeroconf.async_get_service_info(
            "_linebridge._tcp.local.", "promise-b._linebridge._tcp.local."
        )
        assert info is not None and info.port == int(app.api_address.rpartition(":")[2])
        assert info.properties[b"id"] == b"promise-b"
    finally:
        await browser.async_cancel()
        await zeroconf.async_close()


async def test_health_watch_streams_serving(start_bridge):
    app = await start_bridge([])
    async with grpc.aio.insecure_channel(app.api_address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        first = await watch.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()


async def test_cli_token_option_and_environment(start_bridge, tmp_path):
    section, metadata = callers(tmp_path, {"ops": "viewer"})
    app = await start_bridge([sim_device("sim-1", signals=1, rate_hz=10)], security=section)
    token = metadata["ops"][0][1].removeprefix("Bearer ")
    base = [sys.executable, "-m", "linebridge.cli", "devices", "--target", app.api_address]
    env = {k: v for k, v in os.environ.items() if k != "LINEBRIDGE_TOKEN"}
    code, _, err = await _run_env(base, env)
    assert code == 1 and "UNAUTHENTICATED" in err
    code, out, _ = await _run_env([*base, "--token", token], env)
    assert code == 0 and "sim-1" in out
    code, out, _ = await _run_env(base, {**env, "LINEBRIDGE_TOKEN": token})
    assert code == 0 and "sim-1" in out
    code, _, err = await _run_env([*base, "--token", "wrong"], env)
    assert code == 1 and "UNAUTHENTICATED" in err


async def _run_env(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=env
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


@pytest.mark.timeout(150)
async def test_demo_cell_options_choose_the_simulators():
    code, out, err = await run(
        *DEMO, "--robots", "1", "--no-ur", "--no-plc", "--agvs", "0", "--duration", "12", timeout=120
    )
    assert code == 0, err[-2000:]
    assert online_devices(out) == {"robot-1": "opcua"}, out[-2000:]
    assert len(sim_pids(out)) == 1


async def test_uplink_group_edge_node_and_deadbands_as_the_broker_sees_them(
    start_bridge, broker, consumer, tmp_path
):
    uplink = uplink_section(
        broker,
        tmp_path / "outbox.sqlite",
        group_id="plant-9",
        edge_node_id="line-4",
        deadbands={"sim-1/values/0": 0.5},
    )
    app = await start_bridge([sim_device("sim-1", signals=2, rate_hz=100)], uplink=uplink)
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)

    def values(name: str) -> list[float]:
        return [s.value for s in consumer.samples if s.device == "sim-1" and s.name.endswith(name)]

    await eventually(lambda: len(values("values/0")) >= 6 and len(values("values/1")) >= 6, "DDATA", 20)
    topics = {m.topic for m in consumer.messages}
    assert "spBv1.0/plant-9/NBIRTH/line-4" in topics and "spBv1.0/plant-9/DDATA/line-4/sim-1" in topics
    assert not [t for t in topics if "/linebridge/" in t or t.endswith(f"/{app.config.bridge.id}")]
    damped, plain = values("values/0"), values("values/1")
    assert min(abs(b - a) for a, b in zip(damped, damped[1:], strict=False)) >= 0.5
    assert min(abs(b - a) for a, b in zip(plain, plain[1:], strict=False)) < 0.5
    assert consumer.errors == []


@pytest.fixture(scope="module")
def opcua_robot():
    host = ThreadedSimulator(name="bounded-1", rate_hz=10, advertise=False)
    host.start()
    yield host
    host.stop()


async def _signal_paths(start_bridge, endpoint: str, **options) -> list[str]:
    app = await start_bridge([{"id": "rob-1", "driver": "opcua", "endpoint": endpoint, "options": options}])
    await wait_for_state(app, "rob-1", DeviceState.ONLINE, timeout=30)
    stubs = Stubs(app.api_address)
    try:
        answer = await pb.device_grpc.DeviceServiceStub(stubs.channel).GetDevice(
            pb.device.GetDeviceRequest(id="rob-1")
        )
    finally:
        await stubs.close()
    return [s.path for s in answer.device.signals]


async def test_opcua_browse_limits_bound_what_the_device_offers(start_bridge, opcua_robot):
    endpoint = opcua_robot.sim.endpoint
    full = await _signal_paths(start_bridge, endpoint)
    few = await _signal_paths(start_bridge, endpoint, max_nodes=40)
    shallow = await _signal_paths(start_bridge, endpoint, max_browse_depth=5)
    assert "axes/1/actual_position" in full and len(full) > 20
    assert 0 < len(few) < len(full) and set(few) < set(full)
    assert 0 < len(shallow) < len(full) and set(shallow) < set(full)
    assert "axes/1/actual_position" not in shallow  # it sits deeper than five levels below the root
