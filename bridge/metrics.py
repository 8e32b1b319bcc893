"""Prometheus collectors of one bridge (own registry, so several bridges can live in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from linebridge.model import DeviceState, SampleBatch
from linebridge.registry import DeviceRegistry
from linebridge.telemetry.bus import TelemetryBus
from linebridge.uplink.status import UplinkState, UplinkStatus


class _LiveCollector(Collector):
    """Values read at scrape time from the bus and registry (nothing to update on the hot path)."""

    def __init__(self, bus: TelemetryBus, registry: DeviceRegistry) -> None:
        self.bus, self.registry = bus, registry

    def collect(self):  # type: ignore[no-untyped-def]
        subs = GaugeMetricFamily("linebridge_subscribers", "Active telemetry subscriptions")
        subs.add_metric([], len(self.bus.subscriptions))
        yield subs
        states = GaugeMetricFamily(
            "linebridge_device_state", "1 for the state each device is in", labels=["device", "state"]
        )
        for record in self.registry:
            for state in DeviceState:
                states.add_metric([record.id, state.name.lower()], 1.0 if record.state is state else 0.0)
        yield states
        dropped = GaugeMetricFamily("linebridge_samples_dropped", "Samples dropped for slow subscribers")
        dropped.add_metric([], self.bus.samples_dropped)
        yield dropped
        out = GaugeMetricFamily("linebridge_samples_out", "Samples sent to subscribers")
        out.add_metric([], self.bus.samples_out)
        yield out


class _UplinkCollector(Collector):
    """The uplink's state, backlog and losses, read at scrape time."""

    def __init__(self, status: Callable[[], UplinkStatus]) -> None:
        self.status = status

    def collect(self):  # type: ignore[no-untyped-def]
        s = self.status()
        state = GaugeMetricFamily(
            "linebridge_uplink_state", "1 for the uplink's connection state", labels=["state"]
        )
        for value in UplinkState:
            state.add_metric([value.name.lower()], 1.0 if s.state is value else 0.0)
        yield state
        for name, text, value in (
            (
                "backlog_messages",
                "Payloads in the outbox, not yet acknowledged by the broker",
                s.backlog_messages,
            ),
            ("backlog_bytes", "Bytes of payloads in the outbox", s.backlog_bytes),
            ("backlog_samples", "Samples in the outbox", s.backlog_samples),
            ("oldest_age_seconds", "Age of the oldest payload in the outbox", s.oldest_age_seconds),
        ):
            gauge = GaugeMetricFamily(f"linebridge_uplink_{name}", text)
            gauge.add_metric([], value)
            yield gauge
        lost = CounterMetricFamily(
            "linebridge_uplink_lost_samples", "Samples the outbox gave up", labels=["reason"]
        )
        lost.add_metric(["budget"], s.dropped_samples)
        lost.add_metric(["age"], s.expired_samples)
        yield lost
        for name, text, value in (
            ("published_messages", "Payloads acknowledged by the broker", s.published_messages),
            ("published_samples", "Samples acknowledged by the broker", s.published_samples),
            ("replayed_messages", "Payloads sent from the backlog", s.replayed_messages),
            ("connects", "MQTT connections established", s.connects),
        ):
            counter = CounterMetricFamily(f"linebridge_uplink_{name}", text)
            counter.add_metric([], value)
            yield counter
        commands = CounterMetricFamily(
            "linebridge_uplink_commands", "Sparkplug NCMD/DCMD by outcome", labels=["outcome"]
        )
        commands.add_metric(["accepted"], s.commands_accepted)
        commands.add_metric(["rejected"], s.commands_rejected)
        yield commands


class Metrics:
    """The bridge's collectors; per-device children are bound once, then incremented per batch."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.samples_in = Counter(
            "linebridge_samples_in", "Samples received from devices", ["device"], registry=r
        )
        self.batches_in = Counter(
            "linebridge_batches_in", "Batches received from devices", ["device"], registry=r
        )
        self.reconnects = Counter(
            "linebridge_reconnects", "Device reconnections after a failure", ["device"], registry=r
        )
        self.commands = Counter(
            "linebridge_commands", "Commands by kind and final state", ["kind", "state"], registry=r
        )
        self.command_seconds = Histogram(
            "linebridge_command_duration_seconds",
            "Command run time from start to final state",
            ["kind"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.values_guarded = Counter(
            "linebridge_values_guarded",
            "Samples corrected at the driver boundary: oversize, non_finite, out_of_range, timestamp",
            ["device", "reason"],
            registry=r,
        )
        self.info = Gauge("linebridge_info", "Bridge identity", ["bridge_id", "version"], registry=r)
        self._children: dict[str, tuple[Counter, Counter]] = {}
        self.device_samples: dict[str, int] = {}  # plain totals for the live table
        self._server = None

    def watch(self, bus: TelemetryBus, registry: DeviceRegistry) -> None:
        """Report the bus's and the registry's gauges at each scrape."""
        self.registry.register(_LiveCollector(bus, registry))

    def watch_uplink(self, status: Callable[[], UplinkStatus]) -> None:
        """Report the uplink's gauges at each scrape."""
        self.registry.register(_UplinkCollector(status))

    def on_batch(self, batch: SampleBatch) -> None:
        """Count a published batch and its samples."""
        children = self._children.get(batch.device_id)
        if children is None:
            children = self._children[batch.device_id] = (
                self.samples_in.labels(batch.device_id),
                self.batches_in.labels(batch.device_id),
            )
        n = len(batch.aliases)
        children[0].inc(n)
        children[1].inc()
        self.device_samples[batch.device_id] = self.device_samples.get(batch.device_id, 0) + n

    def on_guarded(self, device_id: str, reason: str, samples: int) -> None:
        """Count samples the driver boundary corrected (ValueGuard's counter)."""
        self.values_guarded.labels(device_id, reason).inc(samples)

    def serve(self, host: str, port: int) -> int:
        """Start the HTTP endpoint; returns the bound port (port 0 picks a free one)."""
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return self._server.server_port

    def shutdown(self) -> None:
        """Stop the HTTP endpoint."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
