"""Session supervision: offline on failure, back online by itself, subscriptions restored."""

from __future__ import annotations

import logging
import time

from linebridge.api import pb
from linebridge.client import Sample
from linebridge.drivers.sim.driver import CONNECT_ATTEMPTS, LINKS_DOWN
from linebridge.model import DeviceState
from linebridge.pacing import Backoff
from tests.conftest import sim_device, wait_for_state
from tests.gates_helpers import eventually


def test_backoff_is_capped_and_jittered():
    backoff = Backoff(initial=0.1, maximum=2.0)
    delays = [backoff.delay(n) for n in range(40)]
    assert all(0.05 <= d <= 2.0 for d in delays)
    assert max(delays[10:]) > 1.0  # grew to the cap
    assert len({round(d, 6) for d in delays[10:]}) > 1  # jittered, not lockstep


async def test_device_recovers_and_stream_resumes(start_bridge, client_for, caplog):
    app = await start_bridge([sim_device("cut-1", signals=2, rate_hz=100)])
    await wait_for_state(app, "cut-1", DeviceState.ONLINE)
    client = client_for(app)
    samples = client.samples(["cut-1/values/*"], max_batch_latency={"nanos": 2_000_000})
    got_before = 0
    async for item in samples:
        if isinstance(item, Sample):
            got_before += 1
            if got_before >= 10:
                break
    caplog.set_level(logging.INFO, logger="linebridge.devices.sessions")
    LINKS_DOWN.add("cut-1")
    try:
        await wait_for_state(app, "cut-1", DeviceState.OFFLINE)
        attempts = CONNECT_ATTEMPTS["cut-1"]
        # "logged once" is only proven after retries that did happen: wait for three failed reconnects.
        await eventually(lambda: CONNECT_ATTEMPTS["cut-1"] >= attempts + 3, "three failed reconnects")
    finally:
        restored_ns = time.time_ns()
        LINKS_DOWN.discard("cut-1")
    await wait_for_state(app, "cut-1", DeviceState.ONLINE)
    fresh = 0
    async for item in samples:  # the same stream, without resubscribing
        # Only samples produced after the link came back prove the resume; buffered ones are skipped.
        if isinstance(item, Sample) and item.timestamp_ns > restored_ns:
            fresh += 1
            if fresh >= 10:
                break
    await samples.aclose()
    offline_logs = [r for r in caplog.records if "offline" in r.getMessage()]
    assert len(offline_logs) == 1, "a failure is logged once, not at every retry"
    assert any("back online" in r.getMessage() for r in caplog.records)
    record = app.registry.get("cut-1")
    assert record.state is DeviceState.ONLINE and app.sessions["cut-1"].connections == 2
    metrics = app.metrics.registry.get_sample_value("linebridge_reconnects_total", {"device": "cut-1"})
    assert metrics == 1.0


async def test_one_failing_device_does_not_disturb_another(start_bridge, client_for):
    app = await start_bridge(
        [sim_device("bad-1", fail_connect=True), sim_device("good-1", signals=1, rate_hz=200)]
    )
    await wait_for_state(app, "good-1", DeviceState.ONLINE)
    await wait_for_state(app, "bad-1", DeviceState.OFFLINE)
    client = client_for(app)
    listing = {d.id: d for d in await client.list_devices()}
    assert listing["bad-1"].state == pb.device.DEVICE_STATE_OFFLINE
    assert "unreachable" in listing["bad-1"].state_reason
    attempts = CONNECT_ATTEMPTS["bad-1"]
    samples: list[Sample] = []
    async for item in client.samples(["good-1/values/*"]):
        if isinstance(item, Sample):
            samples.append(item)
            if len(samples) >= 20 and CONNECT_ATTEMPTS["bad-1"] >= attempts + 2:
                break
    # The good device kept streaming fresh samples while the bad one went on failing to connect.
    assert {s.path for s in samples} == {"good-1/values/0"}
    stamps = [s.timestamp_ns for s in samples]
    # In order; the initial value may arrive a second time from the live queue, nothing else repeats.
    assert stamps == sorted(stamps) and len(set(stamps)) >= len(stamps) - 1
    # still failing: between retries it is OFFLINE or CONNECTING, never ONLINE
    assert app.registry.get("bad-1").state in (DeviceState.OFFLINE, DeviceState.CONNECTING)
