"""Test helpers for the uplink: a real Mosquitto broker on a free loopback port, and a Sparkplug consumer.

The broker runs from a temporary config (loopback listener, anonymous, no persistence, `log_type all`)
and is stopped by its pid; `Broker.published()` reads back what the broker logged it received (QoS and
retain per PUBLISH, and each will). The consumer is an independent client (paho-mqtt, not the bridge's
MQTT code): it subscribes to the whole Sparkplug namespace like a host application would, decodes every
payload with tests/sparkplug_decoder.py (not the bridge's code) and checks the protocol as it goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from tests.sparkplug_decoder import DATATYPES, DecodeError, Payload, decode


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if found is None:
        pytest.fail("the uplink tests need a real MQTT broker: install it with `apt-get install mosquitto`")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """One mosquitto process; can be killed and started again on the same port."""

    def __init__(self, workdir: Path, extra_config: str = "", anonymous: bool = True) -> None:
        self.port = free_port()
        self.config = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"  # the broker's own log (flushed per line)
        self.output = workdir / "mosquitto.out"
        # Unlimited in-flight and queued messages: a QoS 0 birth never overtakes queued QoS 1 data.
        # As root, mosquitto would switch to the "mosquitto" user and lose access to the test's temp files.
        stay = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous {str(anonymous).lower()}\n"
            "persistence false\nmax_inflight_messages 0\nmax_queued_messages 0\n"
            f"log_dest file {self.log}\nlog_type all\nconnection_messages true\n" + stay + extra_config
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _spawn(self) -> subprocess.Popen[bytes]:
        with open(self.output, "ab") as log:
            return subprocess.Popen(
                [mosquitto_binary(), "-c", str(self.config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )

    async def start(self) -> None:
        self.process = self._spawn()
        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        while loop.time() < end:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self.process.returncode}: {self.output.read_text()[-500:]}"
                )
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(0.02)
        raise RuntimeError("mosquitto did not start listening within 10 s")

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, sig)
        for _ in range(250):
            if process.poll() is not None:
                return
            await asyncio.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.wait)

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: the broker hangs with its sockets open."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def subscriptions(self, client_id: str) -> dict[str, int]:
        """Topic filter -> requested QoS of every SUBSCRIBE the broker logged from `client_id`."""
        found: dict[str, int] = {}
        lines = self.log.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            if line.endswith(f"Received SUBSCRIBE from {client_id}"):
                for entry in lines[i + 1 :]:
                    match = _FILTER.search(entry)
                    if match is not None:
                        found[match["filter"]] = int(match["q"])
                    elif f": {client_id} " not in entry:  # "<client> <qos> <filter>" lines come between
                        break
        return found

    def published(self, client_id: str) -> list[Logged]:
        """Every PUBLISH the broker logged as received from `client_id`, and each will it registered."""
        found: list[Logged] = []
        lines = self.log.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            received = _RECEIVED.search(line)
            if received is not None and received["client"] == client_id:
                found.append(Logged(received["topic"], int(received["q"]), received["r"] == "1", False))
            connected = _CONNECTED.search(line)
            if connected is not None and connected["client"] == client_id:
                will = next((w for w in lines[i + 1 : i + 4] if "Will message specified" in w), None)
                if will is not None:
                    flags = _WILL.search(will)
                    topic = lines[lines.index(will, i) + 1].split(": ", 1)[-1].strip()
                    assert flags is not None
                    found.append(Logged(topic, int(flags["q"]), flags["r"] == "1", True))
        return found


@dataclass(frozen=True)
class Logged:
    """One message as the broker's log recorded it."""

    topic: str
    qos: int
    retain: bool
    will: bool

    @property
    def verb(self) -> str:
        parts = self.topic.split("/")
        return parts[2] if len(parts) > 2 and parts[0] == "spBv1.0" else self.topic


_RECEIVED = re.compile(
    r"Received PUBLISH from (?P<client>\S+) \(d\d, q(?P<q>\d), r(?P<r>\d), m\d+, '(?P<topic>[^']*)'"
)
_FILTER = re.compile(r"^\d+: \t(?P<filter>\S+) \(QoS (?P<q>\d)\)$")
_CONNECTED = re.compile(r"New client connected from \S+ as (?P<client>\S+) \(")
_WILL = re.compile(r"Will message specified \(\d+ bytes\) \(r(?P<r>\d), q(?P<q>\d)\)")


@dataclass
class Message:
    """One message the consumer saw, decoded."""

    topic: str
    verb: str
    node: str
    device: str
    payload: Payload | None
    raw: bytes


@dataclass
class Sample:
    """One DDATA/NDATA metric, resolved through its birth."""

    node: str
    device: str
    name: str
    timestamp: int
    value: object
    historical: bool


@dataclass
class Consumer:
    """A Sparkplug host-side subscriber that checks births, aliases, datatypes and seq as messages arrive."""

    port: int
    client_id: str = "test-consumer"
    messages: list[Message] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    births: dict[tuple[str, str], dict[int, tuple[str, int]]] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)
    bdseq: dict[str, object] = field(default_factory=dict)  # node -> bdSeq of its current NBIRTH
    stale_deaths: int = 0
    client: paho.Client | None = None
    topic_filter: str = "spBv1.0/#"
    keepalive: int = 10

    async def start(self) -> None:
        """Connect and subscribe (paho's network thread; messages are handled on this event loop)."""
        loop = asyncio.get_running_loop()
        subscribed = loop.create_future()
        client = self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id)
        client.on_message = lambda _c, _u, m: loop.call_soon_threadsafe(self._on, m.topic, bytes(m.payload))
        client.on_subscribe = lambda *_: loop.call_soon_threadsafe(
            lambda: subscribed.done() or subscribed.set_result(None)
        )
        client.on_connect = lambda c, *_: c.subscribe(self.topic_filter, qos=1)
        await asyncio.to_thread(client.connect, "127.0.0.1", self.port, self.keepalive)
        client.loop_start()
        await asyncio.wait_for(subscribed, 10)

    async def stop(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        assert self.client is not None
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        await asyncio.to_thread(info.wait_for_publish, 5)
        assert info.is_published(), f"no PUBACK for {topic}"

    def of(self, verb: str, node: str | None = None, device: str | None = None) -> list[Message]:
        return [
            m
            for m in self.messages
            if m.verb == verb and node in (None, m.node) and device in (None, m.device)
        ]

    async def wait_for(self, condition: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not condition():
            if loop.time() > end:
                raise AssertionError(f"timed out waiting for {what or condition}; errors: {self.errors[:5]}")
            await asyncio.sleep(0.02)

    # -- checking what arrives -------------------------------------------------------------
    def _on(self, topic: str, raw: bytes) -> None:
        parts = topic.split("/")
        if parts[1] == "STATE":
            return
        verb, node = parts[2], parts[3]
        device = parts[4] if len(parts) > 4 else ""
        if verb in ("NCMD", "DCMD"):  # what host applications (and the tests) send: not ours to judge
            self.messages.append(Message(topic, verb, node, device, None, raw))
            return
        try:
            payload = decode(raw)
        except DecodeError as exc:
            self.errors.append(f"{topic}: undecodable: {exc}")
            return
        self.messages.append(Message(topic, verb, node, device, payload, raw))
        self._check_seq(node, verb, payload)
        if verb in ("NBIRTH", "DBIRTH"):
            self._birth(node, device, verb, payload)
        elif verb in ("DDATA", "NDATA"):
            self._data(node, device, payload)

    def _check_seq(self, node: str, verb: str, payload: Payload) -> None:
        if verb == "NDEATH":
            if payload.seq is not None:
                self.errors.append("NDEATH carries a seq")
            bdseq = [m.value() for m in payload.metrics if m.name == "bdSeq"]
            if not bdseq:
                self.errors.append("NDEATH without bdSeq")
            elif bdseq[0] == self.bdseq.get(node):  # a host ends the session only if the bdSeq matches
                self.seq.pop(node, None)
            else:
                self.stale_deaths += 1  # the will of an older connection attempt
            return
        if payload.seq is None or not 0 <= payload.seq <= 255:
            self.errors.append(f"{verb} from {node}: seq {payload.seq}")
            return
        if verb == "NBIRTH":
            self.bdseq[node] = next((m.value() for m in payload.metrics if m.name == "bdSeq"), None)
            if payload.seq != 0:
                self.errors.append(f"NBIRTH with seq {payload.seq}")
        elif node not in self.seq:
            self.errors.append(f"{verb} from {node} before its NBIRTH")
        elif payload.seq != (self.seq[node] + 1) % 256:
            self.errors.append(f"{verb} from {node}: seq {payload.seq} after {self.seq[node]}")
        self.seq[node] = payload.seq

    def _birth(self, node: str, device: str, verb: str, payload: Payload) -> None:
        table = {}
        if verb == "NBIRTH":
            for key in [k for k in self.births if k[0] == node]:
                del self.births[key]  # a new node session: devices must be born again
        for metric in payload.metrics:
            if metric.name is None or metric.datatype not in DATATYPES or metric.timestamp is None:
                self.errors.append(f"{verb} {node}/{device}: metric without name, datatype or timestamp")
                continue
            if metric.alias is not None:
                table[metric.alias] = (metric.name, metric.datatype)
            try:
                metric.value()
            except DecodeError as exc:
                self.errors.append(f"{verb} {node}/{device} {metric.name}: {exc}")
        self.births[(node, device)] = table

    def _data(self, node: str, device: str, payload: Payload) -> None:
        table = self.births.get((node, device))
        if table is None:
            self.errors.append(f"DATA for {node}/{device} before its birth")
            return
        for metric in payload.metrics:
            if metric.name is not None or metric.alias not in table or metric.timestamp is None:
                self.errors.append(
                    f"DATA {node}/{device}: metric must carry a known alias and a timestamp only"
                )
                continue
            name, datatype = table[metric.alias]
            try:
                value = metric.value(datatype)
            except DecodeError as exc:
                self.errors.append(f"DATA {node}/{device} {name}: {exc}")
                continue
            self.samples.append(Sample(node, device, name, metric.timestamp, value, metric.is_historical))


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    """A running mosquitto on a free loopback port, stopped (by pid) after the test."""
    with tempfile.TemporaryDirectory(prefix="linebridge-mqtt-") as workdir:
        server = Broker(Path(workdir))
        await server.start()
        try:
            yield server
        finally:
            await server.stop()


@pytest.fixture
async def consumer(broker: Broker) -> AsyncIterator[Consumer]:
    """A Sparkplug consumer subscribed to spBv1.0/# on the test broker."""
    listener = Consumer(broker.port)
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop()


def uplink_section(broker: Broker, outbox_path: Path, **changes: object) -> dict[str, object]:
    """An `uplink:` config section for tests: this broker, quick reconnects, a short latency window."""
    section: dict[str, object] = {
        "enabled": True,
        "broker": broker.url,
        "keepalive_seconds": 5,
        "connect_timeout_seconds": 3,
        "reconnect_initial_seconds": 0.05,
        "reconnect_max_seconds": 0.3,
        "max_latency_seconds": 0.02,
        "outbox": {"path": str(outbox_path), "commit_interval_seconds": 0.2},
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(section.get(key), dict):
            section[key] = {**section[key], **value}  # type: ignore[dict-item]
        else:
            section[key] = value
    return section
