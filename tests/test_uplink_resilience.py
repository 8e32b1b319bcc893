"""Store-and-forward under failure: the broker killed under load, the bridge killed with -9, a full disk budget.

The sample identity is (device, signal, millisecond timestamp, value): the sim driver stamps each batch
and cycles its values, so two samples of one signal never share both. Nothing here asserts on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from linebridge.api import pb
from linebridge.app import BridgeApp
from linebridge.client.raw import RawClient
from linebridge.drivers.sim.driver import LINKS_DOWN
from linebridge.model import DeviceState, SampleBatch
from linebridge.uplink import Uplink, UplinkState, UplinkStatus
from tests.conftest import BridgeFactory, free_port, wait_for_state
from tests.mqtt_broker import Broker, Consumer, Sample, uplink_section

Identity = tuple[str, str, int, object]
HOST = "spBv1.0/STATE/scada"


def host_online(stamp: int) -> bytes:
    return json.dumps({"online": True, "timestamp": stamp}).encode()


class Production:
    """Every sample the devices published on the bus, in order (a tap like the uplink's own)."""

    def __init__(self, app: BridgeApp) -> None:
        self.app = app
        self.samples: list[Identity] = []
        self.remove = app.bus.add_tap(self._tap)

    def _tap(self, batch: SampleBatch) -> None:
        for alias, value, stamp in zip(batch.aliases, batch.values, batch.timestamps, strict=True):
            found = self.app.registry.by_alias(alias)
            assert found is not None
            self.samples.append((batch.device_id, found[1].path, stamp // 1_000_000, value))


def identity(sample: Sample) -> Identity:
    return (sample.device, sample.name, sample.timestamp, sample.value)


def in_production_order(received: list[Identity], position: dict[Identity, int]) -> bool:
    """Each signal's samples arrive in the order the device produced them."""
    last: dict[tuple[str, str], int] = {}
    for sample in received:
        key, index = sample[:2], position[sample]
        if index <= last.get(key, -1):  # type: ignore[arg-type]
            return False
        last[key] = index  # type: ignore[index]
    return True


async def add_sims(app: BridgeApp, count: int, rate_hz: float, signals: int) -> None:
    for n in range(1, count + 1):
        options = app.drivers.options("sim", {"rate_hz": rate_hz, "signals": signals}, "test")
        app.add_device(f"sim-{n}", "sim", f"sim://sim-{n}", options)


async def quiet(app: BridgeApp, count: int) -> None:
    """Cut every sim link so production stops at a well-defined point."""
    for n in range(1, count + 1):
        LINKS_DOWN.add(f"sim-{n}")
    for n in range(1, count + 1):
        await wait_for_state(app, f"sim-{n}", DeviceState.OFFLINE, DeviceState.CONNECTING)


@pytest.fixture(autouse=True)
def _links() -> None:  # type: ignore[misc]
    yield
    for n in range(1, 4):
        LINKS_DOWN.discard(f"sim-{n}")


@pytest.mark.timeout(180)  # inner waits add up past the global 60 s
async def test_broker_killed_under_load_every_sample_arrives_once_in_order(
    broker: Broker, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    first = Consumer(broker.port, "host-1")
    await first.start()
    await first.publish(HOST, host_online(1), retain=True)
    app = await start_bridge(
        [],
        uplink=uplink_section(
            broker, tmp_path / "o.sqlite", primary_host_id="scada", report_by_exception=False
        ),
    )
    uplink = app.uplink
    assert uplink is not None
    production = Production(app)
    await add_sims(app, 2, rate_hz=200, signals=4)
    await first.wait_for(lambda: len(first.samples) > 500, what="live data before the outage")

    await broker.kill()  # SIGKILL under load: whatever was in flight has no PUBACK
    await first.stop()
    await first.wait_for(lambda: uplink.status().state is UplinkState.OFFLINE, what="the uplink notices")
    stored = uplink.status().backlog_samples
    await first.wait_for(
        lambda: uplink.status().backlog_samples > stored + 4800, what="a backlog during the outage"
    )
    await broker.start()
    second = Consumer(broker.port, "host-2")
    await second.start()
    await second.publish(HOST, host_online(2), retain=True)  # the host is back: the bridge may publish again
    await second.wait_for(
        lambda: any(not s.historical for s in second.samples), what="live data after the outage"
    )

    await quiet(app, 2)
    produced = set(production.samples)
    received = [identity(s) for s in first.samples + second.samples]
    await second.wait_for(
        lambda: produced <= {identity(s) for s in second.samples + first.samples},
        what="every produced sample",
        timeout=30,
    )
    await second.wait_for(lambda: uplink.status().backlog_messages == 0, what="an empty outbox")
    received = [identity(s) for s in first.samples + second.samples if s.device]  # not node metrics
    status = uplink.status()
    counts = Counter(received)
    duplicates = sum(n - 1 for n in counts.values())
    assert len(production.samples) == len(produced)  # identities are unique
    assert set(counts) == produced
    assert duplicates <= status.resent_samples  # only what was sent without PUBACK may come twice
    assert status.dropped_samples == 0 and status.expired_samples == 0
    assert status.replayed_messages > 0 and any(s.historical for s in second.samples)
    position = {sample: i for i, sample in enumerate(production.samples)}
    for samples in (first.samples, second.samples):
        for historical in (False, True):
            stream = [identity(s) for s in samples if s.historical is historical]
            assert in_production_order(list(dict.fromkeys(stream)), position)
    for device in ("sim-1", "sim-2"):  # a device dies at the consumer only after its stored data arrived
        await second.wait_for(lambda d=device: second.of("DDEATH", device=d), what=f"DDEATH of {device}")
        verbs = [m.verb for m in second.messages if m.device == device]
        assert verbs[-1] == "DDEATH" and verbs.count("DDEATH") == 1
    assert first.errors == [] and second.errors == []
    await second.stop()


HANG_SECONDS = 20.0


@pytest.mark.timeout(180)
async def test_broker_hung_20_s_under_load_every_sample_arrives(
    broker: Broker, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    """SIGSTOP keeps the broker's sockets open: the uplink must notice (checkpoint watchdog), keep what
    it sent into the hang, and re-send it flagged historical once the broker is back."""
    host = Consumer(broker.port, "host-hang", keepalive=120)  # stays connected through the hang
    await host.start()
    app = await start_bridge(
        [], uplink=uplink_section(broker, tmp_path / "o.sqlite", report_by_exception=False)
    )
    uplink = app.uplink
    assert uplink is not None
    production = Production(app)
    await add_sims(app, 2, rate_hz=200, signals=4)
    await host.wait_for(lambda: len(host.samples) > 500, what="live data before the hang")
    connects = uplink.status().connects
    broker.pause()
    try:
        await host.wait_for(lambda: uplink.status().hung_broker == 1, what="the hang detected", timeout=30)
        await host.wait_for(lambda: uplink.status().state is not UplinkState.ONLINE, what="offline")
        await asyncio.sleep(HANG_SECONDS)  # the fault's duration (the scenario), not a wait for a condition
    finally:
        broker.resume()
    await host.wait_for(lambda: uplink.status().connects > connects, what="a new session", timeout=60)
    await host.wait_for(lambda: any(s.historical for s in host.samples), what="re-sent data", timeout=60)
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
    assert status.dropped_samples == 0 and status.expired_samples == 0
    assert host.errors == []
    await host.stop()


async def test_a_full_disk_budget_drops_counts_and_logs_once(
    broker: Broker, start_bridge: BridgeFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await broker.kill()  # no broker yet: everything goes to the outbox
    caplog.set_level(logging.WARNING, logger="linebridge.uplink.outbox")
    app = await start_bridge(
        [],
        uplink=uplink_section(
            broker,
            tmp_path / "o.sqlite",
            report_by_exception=False,
            max_payload_bytes=4096,
            outbox={"budget_bytes": 40_000, "policy": "drop_oldest"},
        ),
    )
    uplink = app.uplink
    assert uplink is not None
    production = Production(app)
    await add_sims(app, 1, rate_hz=500, signals=8)
    await until(uplink, lambda s: s.dropped_samples > 5000)
    assert uplink.status().backlog_bytes <= 40_000
    full = [r for r in caplog.records if "outbox full" in r.getMessage()]
    assert len(full) == 1  # once per episode, however many payloads it costs

    await quiet(app, 1)
    await broker.start()
    listener = Consumer(broker.port, "late")
    await listener.start()
    await listener.wait_for(
        lambda: uplink.status().backlog_messages == 0 and uplink.status().state is UplinkState.ONLINE,
        what="the backlog drained",
    )
    await listener.stop()
    # Nothing else is lost: what was produced either went to the broker or is counted as dropped.
    status = uplink.status()
    assert status.published_samples + status.dropped_samples == len(production.samples)
    assert status.expired_samples == 0


async def until(uplink: Uplink, condition: Callable[[UplinkStatus], bool], timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition(uplink.status()):
        assert loop.time() < end, f"timed out; uplink status {uplink.status()}"
        await asyncio.sleep(0.02)


async def until_committed(path: Path, samples: int, timeout: float = 20) -> None:
    """Wait until the outbox file itself holds `samples` samples (read beside the running bridge)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            with contextlib.suppress(sqlite3.Error):
                (stored,) = db.execute("SELECT coalesce(sum(samples), 0) FROM outbox").fetchone()
                if stored >= samples:
                    return
        assert loop.time() < end, f"the outbox file never held {samples} samples"
        await asyncio.sleep(0.05)


def bridge_config(path: Path, grpc_port: int, outbox: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "bridge": {"id": "killed", "log_level": "INFO"},
                "grpc": {"address": f"127.0.0.1:{grpc_port}", "grace_seconds": 0},
                "metrics": {"enabled": False},
                "discovery": {"enabled": False},
                "devices": [
                    {
                        "id": "sim-1",
                        "driver": "sim",
                        "endpoint": "sim://sim-1",
                        "options": {"rate_hz": 100, "signals": 6},
                    }
                ],
                "uplink": {
                    "primary_host_id": "scada",
                    "report_by_exception": False,
                    "reconnect_initial_seconds": 0.05,
                    "reconnect_max_seconds": 0.3,
                    "outbox": {"path": str(outbox), "commit_interval_seconds": 0.2},
                },
            }
        )
    )
    return path


def spawn_bridge(config: Path, mqtt: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "linebridge.cli", "run", "-c", str(config), "--mqtt", mqtt],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            cwd=Path(__file__).parent.parent,
        )


async def uplink_status(client: RawClient) -> pb.bridge.GetUplinkStatusResponse:
    async with asyncio.timeout(20):
        while True:
            with contextlib.suppress(Exception):
                return await client.bridge.GetUplinkStatus(pb.bridge.GetUplinkStatusRequest(), timeout=1)
            await asyncio.sleep(0.05)


@pytest.mark.timeout(180)  # inner waits add up past the global 60 s
async def test_bridge_kill_9_resumes_from_the_outbox(broker: Broker, tmp_path: Path) -> None:
    consumer = Consumer(broker.port, "host")
    await consumer.start()
    await consumer.publish(HOST, json.dumps({"online": False, "timestamp": 1}).encode(), retain=True)
    port = free_port()
    config = bridge_config(tmp_path / "bridge.yaml", port, tmp_path / "outbox.sqlite")
    process = spawn_bridge(config, broker.url, tmp_path / "bridge.log")
    client = RawClient(f"127.0.0.1:{port}")
    try:
        # Run 1 is held by the offline host, so everything it produces goes to the outbox.
        first = await uplink_status(client)
        while first.backlog_samples < 600 or first.state != pb.bridge.UPLINK_STATE_WAITING_FOR_HOST:
            await asyncio.sleep(0.05)
            first = await uplink_status(client)
        await until_committed(tmp_path / "outbox.sqlite", first.backlog_samples)
        os.kill(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.wait)
        await consumer.wait_for(lambda: consumer.of("NDEATH", "killed"), what="the will NDEATH")
        will_bdseq = consumer.of("NDEATH", "killed")[0].payload.metrics[0].value()  # type: ignore[union-attr]

        process = spawn_bridge(config, broker.url, tmp_path / "bridge.log")
        resumed = await uplink_status(client)
        while resumed.state != pb.bridge.UPLINK_STATE_WAITING_FOR_HOST:  # connected: the outbox is open
            await asyncio.sleep(0.05)
            resumed = await uplink_status(client)
        assert resumed.backlog_samples >= first.backlog_samples  # the outbox came back
        await consumer.publish(HOST, json.dumps({"online": True, "timestamp": 2}).encode(), retain=True)
        await consumer.wait_for(
            lambda: any(not s.historical for s in consumer.samples), what="live data in run 2"
        )
        await consumer.wait_for(
            lambda: sum(s.historical for s in consumer.samples) >= first.backlog_samples, what="run 1's data"
        )
        (nbirth,) = consumer.of("NBIRTH", "killed")
        assert nbirth.payload is not None
        assert [m.value() for m in nbirth.payload.metrics if m.name == "bdSeq"] == [(will_bdseq + 1) % 256]
        history = [identity(s) for s in consumer.samples if s.historical]
        assert len(history) == len(set(history))  # run 1 never published: no duplicates
        for name in (f"values/{i}" for i in range(6)):
            stamps = [s.timestamp for s in consumer.samples if s.historical and s.name == name]
            assert stamps == sorted(stamps)
        assert consumer.errors == []

        output = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "linebridge.cli", "uplink", "status", "--target", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert output.returncode == 0 and "uplink: ONLINE" in output.stdout and "backlog:" in output.stdout
    finally:
        await client.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), 15)
            except TimeoutError:
                process.kill()
        await consumer.stop()
    assert process.returncode == 0, (tmp_path / "bridge.log").read_text()[-2000:]
