"""Driver conformance: the same checks against simulators (default) or a real cell (--rig FILE)."""

from __future__ import annotations

import asyncio
import time

import pytest

from hil_tests.rig import RigDevice
from linebridge.api import pb
from linebridge.client import Sample, value_message, value_of
from linebridge.model import DeviceState
from tests.conftest import wait_for_state

ONLINE = (DeviceState.ONLINE, DeviceState.DEGRADED)


async def _online(bridge, device: RigDevice) -> None:
    await wait_for_state(bridge, device.id, *ONLINE, timeout=20)


async def test_discovered_or_configured(bridge, device):
    await _online(bridge, device)
    record = bridge.registry.get(device.id)
    assert record.driver == device.driver
    assert record.source == ("mdns" if device.discover else "config")


async def test_connect_and_browse(bridge, client, device):
    await _online(bridge, device)
    got = (await client.devices.GetDevice(pb.device.GetDeviceRequest(id=device.id))).device
    if device.expect.kind:
        assert pb.device.DeviceKind.Name(got.kind) == f"DEVICE_KIND_{device.expect.kind.upper()}"
    paths = {s.path for s in got.signals}
    missing = [p for p in device.expect.signals if p not in paths]
    assert not missing, f"{device.id} lacks signals {missing}"


async def test_stream_changes(bridge, client, device):
    if not device.expect.streaming:
        pytest.skip("rig file names no streaming glob for this device")
    await _online(bridge, device)
    values: dict[str, set] = {}
    async with asyncio.timeout(15):
        async for item in client.samples([f"{device.id}/{device.expect.streaming}"]):
            if isinstance(item, Sample):
                values.setdefault(item.path, set()).add(item.value)
                if values and all(len(v) >= 3 for v in values.values()) and len(values) > 0:
                    break
    assert values and all(len(v) >= 3 for v in values.values())


async def test_write_and_read_back(bridge, client, device):
    check = device.expect.write
    if check is None:
        pytest.skip("rig file names no write check for this device")
    await _online(bridge, device)

    async def write(value):
        events = await client.execute(
            pb.command.ExecuteRequest(
                device_id=device.id,
                write=pb.command.WriteAction(
                    writes=[pb.command.SignalWrite(path=check.path, value=value_message(value))]
                ),
            )
        )
        assert events[-1].state == pb.command.COMMAND_STATE_SUCCEEDED, events[-1].error.message

    await write(check.value)
    read = await client.telemetry.Read(
        pb.telemetry.ReadRequest(paths=[f"{device.id}/{check.path}"], from_device=True)
    )
    assert value_of(read.values[0].value) == pytest.approx(check.value)
    if check.restore is not None:
        await write(check.restore)


async def test_call_method(bridge, client, device):
    check = device.expect.call
    if check is None:
        pytest.skip("rig file names no method call for this device")
    await _online(bridge, device)
    events = await client.execute(
        pb.command.ExecuteRequest(
            device_id=device.id,
            invoke=pb.command.InvokeAction(method=check.method, args=[value_message(a) for a in check.args]),
        )
    )
    assert events[-1].state == pb.command.COMMAND_STATE_SUCCEEDED, events[-1].error.message
    if check.then_path:
        read = await client.telemetry.Read(
            pb.telemetry.ReadRequest(paths=[f"{device.id}/{check.then_path}"], from_device=True)
        )
        assert value_of(read.values[0].value) == check.then_value


async def test_survives_server_restart(bridge, client, rig, device):
    sim = rig.simulators.get(device.id)
    if sim is None or not device.restart:
        pytest.skip("only simulated devices are restarted by the suite")
    await _online(bridge, device)
    glob = f"{device.id}/{device.expect.streaming or '*'}"
    stream = client.samples([glob])

    async def sample_after(moment_ns: int) -> Sample:
        """The first sample whose *source* timestamp is after `moment_ns` (older buffered ones skipped)."""
        async with asyncio.timeout(20):
            async for item in stream:
                if isinstance(item, Sample) and item.timestamp_ns > moment_ns:
                    return item
        raise AssertionError("the stream ended")

    await sample_after(0)
    await asyncio.to_thread(sim.stop)
    await wait_for_state(bridge, device.id, DeviceState.OFFLINE, timeout=20)
    restarted_ns = time.time_ns()  # nothing the new process produces can be older than this
    await asyncio.to_thread(sim.start)
    await _online(bridge, device)
    # The same subscription resumed by itself: a sample produced after the restart arrives on it. A sample
    # buffered before the stop cannot satisfy this (a probe once saw one 893 ms older than the stop).
    resumed = await sample_after(restarted_ns)
    assert resumed.path.startswith(f"{device.id}/")
    await stream.aclose()
