"""A network partition between the bridge and the broker (a fault proxy that drops everything both ways,
sockets open): the uplink notices within its keepalive, keeps what it sent into the void, and delivers
every sample once the path is back (re-sent ones flagged historical)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil_tests.proxy import Direction, Fault, FaultKind, FaultProxy
from linebridge.drivers.sim.driver import LINKS_DOWN
from linebridge.uplink import UplinkState
from tests.conftest import BridgeFactory
from tests.mqtt_broker import Broker, Consumer, uplink_section
from tests.test_uplink_resilience import Production, add_sims, identity, quiet

PARTITION_SECONDS = 8.0


@pytest.fixture(autouse=True)
def _links() -> Iterator[None]:
    yield
    for n in range(1, 4):
        LINKS_DOWN.discard(f"sim-{n}")


@pytest.mark.timeout(180)
async def test_a_partition_under_load_loses_nothing(
    broker: Broker, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    proxy = FaultProxy("127.0.0.1", broker.port)
    await proxy.start()
    host = Consumer(broker.port, "host-partition")  # the host application's side is not cut off
    await host.start()
    try:
        section = uplink_section(broker, tmp_path / "o.sqlite", report_by_exception=False)
        section["broker"] = f"mqtt://127.0.0.1:{proxy.port}"
        app = await start_bridge([], uplink=section)
        uplink = app.uplink
        assert uplink is not None
        production = Production(app)
        await add_sims(app, 2, rate_hz=200, signals=4)
        await host.wait_for(lambda: len(host.samples) > 500, what="live data before the partition")
        connects = uplink.status().connects
        cut = proxy.inject(Fault(FaultKind.BLACKHOLE, Direction.BOTH))
        try:
            await host.wait_for(
                lambda: uplink.status().hung_broker == 1, what="the partition noticed", timeout=30
            )
            await host.wait_for(lambda: uplink.status().state is not UplinkState.ONLINE, what="offline")
            await asyncio.sleep(
                PARTITION_SECONDS
            )  # the fault's duration (the scenario), not a wait for a condition
        finally:
            proxy.release(cut)
        await host.wait_for(lambda: uplink.status().connects > connects, what="a new session", timeout=60)
        await quiet(app, 2)
        produced = set(production.samples)
        await host.wait_for(
            lambda: produced <= {identity(s) for s in host.samples}, what="every produced sample", timeout=60
        )
        await host.wait_for(lambda: uplink.status().backlog_messages == 0, what="an empty outbox")
        status = uplink.status()
        counts = Counter(identity(s) for s in host.samples if s.device)  # device data (not node metrics)
        assert set(counts) == produced
        assert sum(n - 1 for n in counts.values()) <= status.resent_samples
        assert any(s.historical for s in host.samples) and status.resent_samples > 0
        assert status.dropped_samples == 0 and status.expired_samples == 0
        assert host.errors == []
    finally:
        await host.stop()
        await proxy.stop()
