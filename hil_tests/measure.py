"""What the runner records during a scenario, as numbers on one clock (seconds from the scenario's t = 0):
device states, sample arrivals per device, commands, fault windows, and the uplink as an independent
Sparkplug subscriber (paho-mqtt) sees it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from linebridge.client import AsyncClient
from linebridge.hil.scenario import Scenario
from linebridge.uplink.proto import sparkplug_b_pb2 as spb

RATE_BIN = 0.5  # seconds per bar of the sample-rate plot


@dataclass
class Result:
    """One expectation (or one recorded number without a bound) of one scenario."""

    name: str
    passed: bool | None  # None: a measurement reported without a bound
    measured: float | None
    bound: str
    unit: str = "s"
    detail: str = ""


@dataclass
class CommandRecord:
    """One command the runner sent: when, what, and how it ended."""

    device: str
    action: str
    sent: float
    ended: float = float("nan")
    outcome: str = ""  # SUCCEEDED, FAILED, ... or the error class and gRPC code
    accepted: float = float("nan")


@dataclass
class MoveRecord:
    """One mdns_move: when the new address was announced, and the traffic through both proxies."""

    device: str
    announced: float
    connected: float | None = None  # the bridge's first connection through the new proxy
    new_bytes: int = 0  # device -> bridge through the new proxy, by the end of the step
    old_bytes_after: int | None = None  # device -> bridge through the old proxy once moved (should be 0)


@dataclass
class Recording:
    """Everything measured in one scenario run."""

    devices: list[str]
    start: float = 0.0  # time.monotonic() at t = 0
    states: dict[str, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))
    wall_start: float = 0.0  # time.time() at t = 0: source timestamps are placed on the clock with it
    # per device: chunks of the source timestamps of its samples, in seconds from t = 0
    arrivals: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    commands: list[CommandRecord] = field(default_factory=list)
    faults: list[tuple[float, float, str, str]] = field(default_factory=list)  # start, end, link, kind
    uplink: UplinkCounter | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set at every state change
    moves: dict[int, MoveRecord] = field(default_factory=dict)  # step index -> its mdns_move
    # bridge device id -> rig id, for devices found through mDNS under a run-unique instance name
    aliases: dict[str, str] = field(default_factory=dict)

    def rig_id(self, bridge_id: str) -> str:
        """The rig's name for a device the bridge knows as `bridge_id`."""
        return self.aliases.get(bridge_id, bridge_id)

    async def wait_until(self, condition: Callable[[], bool], until: float) -> bool:
        """Wait for a state condition, at most until time `until`; whether it held."""
        while not condition():
            self.changed.clear()
            try:
                async with asyncio.timeout(max(0.0, until - self.now())):
                    await self.changed.wait()
            except TimeoutError:
                return condition()
        return True

    def now(self) -> float:
        """Seconds since t = 0."""
        return time.monotonic() - self.start

    def shift(self, offset: float) -> None:
        """Move t = 0 by `offset` seconds (what was recorded before it gets negative times)."""
        self.start += offset
        self.wall_start += offset
        for series in self.states.values():
            series[:] = [(t - offset, v) for t, v in series]
        for chunks in self.arrivals.values():
            chunks[:] = [c - offset for c in chunks]
        if self.uplink is not None:
            self.uplink.shift(offset)

    def times(self, device: str) -> np.ndarray:
        """Sorted source times (seconds from t = 0) of every sample of the device."""
        return times_of(self.arrivals, device)

    def state_at(self, device: str, t: float) -> str:
        """The device's state at time t ('' before the first event)."""
        state = ""
        for when, name in self.states[device]:
            if when > t:
                break
            state = name
        return state

    def first_state(self, device: str, after: float, wanted: bool, names: tuple[str, ...]) -> float | None:
        """The first time >= after the device's state is (wanted=True) or is not in `names`."""
        if (self.state_at(device, after) in names) == wanted:
            return after
        for when, name in self.states[device]:
            if when >= after and (name in names) == wanted:
                return when
        return None

    def rate(self, device: str, since: float, until: float) -> float:
        """Samples per second the device produced between two times (by source timestamp)."""
        t = self.times(device)
        count = np.count_nonzero((t >= since) & (t < until))
        return float(count) / (until - since) if until > since else 0.0

    def rate_series(self, device: str, until: float) -> list[tuple[float, float]]:
        """(bin start, samples per second) bins from the first sample to `until`."""
        return rate_series(self.times(device), until)

    def max_gap(self, device: str, since: float, until: float) -> float:
        """The longest time in [since, until] without a sample of the device (by source timestamp)."""
        t = self.times(device)
        t = np.concatenate([[since], t[(t >= since) & (t <= until)], [until]])
        return float(np.max(np.diff(t)))


def times_of(chunks: dict[str, list[np.ndarray]], device: str) -> np.ndarray:
    """The chunks of one device as one sorted array."""
    found = chunks.get(device) or [np.empty(0)]
    return np.sort(np.concatenate(found))


def rate_series(t: np.ndarray, until: float) -> list[tuple[float, float]]:
    """Samples per second in RATE_BIN bins, from the first sample to `until`."""
    if len(t) == 0:
        return []
    first = float(np.floor(t[0] / RATE_BIN) * RATE_BIN)
    edges = np.arange(first, until + RATE_BIN, RATE_BIN)
    if len(edges) < 2:
        return []
    counts, _ = np.histogram(t, bins=edges)
    return [(float(e), float(c) / RATE_BIN) for e, c in zip(edges[:-1], counts, strict=True)]


async def watch_states(client: AsyncClient, rec: Recording) -> None:
    """Record every device state change until cancelled."""
    async for event in client.watch_devices():
        device = event.device
        rig_id = rec.rig_id(device.id)
        if rig_id in rec.devices:
            history = rec.states[rig_id]
            name = device.state.name
            if not history or history[-1][1] != name:
                history.append((rec.now(), name))
                rec.changed.set()


async def count_samples(client: AsyncClient, rec: Recording, globs: list[str]) -> None:
    """Record the source time of every sample, per device (one array per batch and device)."""
    async for batch in client.subscribe(globs, latency=0.05):
        if len(batch.index) == 0:
            continue
        devices = np.array([p.partition("/")[0] for p in batch.catalog.paths], dtype=object)[batch.index]
        seconds = batch.timestamps.astype(np.float64) / 1e9 - rec.wall_start
        for name in np.unique(devices):
            rec.arrivals[rec.rig_id(str(name))].append(seconds[devices == name])
        rec.changed.set()


class UplinkCounter:
    """An independent Sparkplug host: counts DDATA samples per device, duplicates and sequence gaps.

    Sparkplug 3.0 [tck-id-payloads-sequence-num-incrementing]: seq runs 0..255 per edge node across
    NBIRTH, DBIRTH and DDATA; a jump shows a lost message. A metric repeated with the same name and
    timestamp and value is a duplicate (a re-sent store-and-forward message counted twice)."""

    def __init__(self, port: int, group: str, clock: Recording) -> None:
        import paho.mqtt.client as mqtt  # the `hil` extra; imported here so the CLI starts without it

        self._mqtt = mqtt
        self.port, self.group, self.clock = port, group, clock
        self.samples: Counter[str] = Counter()
        self.keys: Counter[tuple[str, str, int, object]] = Counter()
        self.arrivals: dict[str, list[np.ndarray]] = defaultdict(list)  # source times, as Recording
        self.seq_gaps = 0
        self._last_seq: int | None = None
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"linebridge-hil-{id(self)}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)

    def start(self) -> None:
        self.client.connect_async("127.0.0.1", self.port, keepalive=5)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def shift(self, offset: float) -> None:
        with self._lock:
            for chunks in self.arrivals.values():
                chunks[:] = [c - offset for c in chunks]

    def duplicates_of(self, devices: list[str]) -> int:
        """Samples of these devices received more than once (same metric, same timestamp)."""
        with self._lock:
            return sum(n - 1 for (device, *_), n in self.keys.items() if n > 1 and device in devices)

    def _on_connect(self, client, userdata, flags, reason, properties=None) -> None:  # type: ignore[no-untyped-def]
        client.subscribe(f"spBv1.0/{self.group}/#", qos=1)

    def _on_message(self, client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        parts = message.topic.split("/")
        if len(parts) < 4:
            return
        payload = spb.Payload()
        try:
            payload.ParseFromString(message.payload)
        except Exception:  # noqa: BLE001  (a broken payload is counted as a gap, not a crash)
            self.seq_gaps += 1
            return
        verb = parts[2]
        with self._lock:
            if verb in ("NBIRTH", "DBIRTH", "DDATA", "NDATA", "DDEATH"):
                self._sequence(verb, payload.seq)
            if verb == "DDATA" and len(parts) == 5:
                self._count(self.clock.rig_id(parts[4]), payload)

    def _sequence(self, verb: str, seq: int) -> None:
        if verb == "NBIRTH":
            self._last_seq = seq
            return
        if self._last_seq is not None and seq != (self._last_seq + 1) % 256:
            self.seq_gaps += 1
        self._last_seq = seq

    def _count(self, device: str, payload: spb.Payload) -> None:
        stamps = []
        for metric in payload.metrics:
            name = metric.name or str(metric.alias)
            kind = metric.WhichOneof("value")
            value = getattr(metric, kind) if kind else None
            self.keys[(device, name, metric.timestamp, value)] += 1
            stamps.append(metric.timestamp or payload.timestamp)
        self.samples[device] += len(stamps)
        self.arrivals[device].append(np.array(stamps, dtype=np.float64) / 1e3 - self.clock.wall_start)


async def wait_settled(rec: Recording, timeout: float) -> bool:
    """Wait until every device is ONLINE and has delivered samples; whether that happened in time."""

    def settled() -> bool:
        return all(rec.state_at(d, rec.now()) == "ONLINE" and rec.arrivals[d] for d in rec.devices)

    return await rec.wait_until(settled, rec.now() + timeout)


@dataclass
class ScenarioRun:
    """A scenario, what was recorded while it ran, and the verdicts."""

    scenario: Scenario
    recording: Recording
    results: list[Result] = field(default_factory=list)
    error: str = ""
    wall_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.error and all(r.passed is not False for r in self.results)
