"""Prometheus collectors of one bridge (own registry, so several bridges can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bridge.model import DeviceState, SampleBatch
from bridge.registry import DeviceRegistry
from bridge.telemetry import TelemetryBus


class _LiveCollector(Collector):
    """Values read at scrape time from the bus and registry (nothing to update on the hot path)."""

    def __init__(self, bus: TelemetryBus, registry: DeviceRegistry) -> None:
        self.bus, self.registry = bus, registry

    def collect(self):  # type: ignore[no-untyped-def]
        subs = GaugeMetricFamily("linebridge_subscribers", "Active telemetry subscriptions")
        subs.add_metric([], len(self.bus.subscriptions))
        yield subs
        states = GaugeMetricFamily("linebridge_device_state", "1 for the state each device is in",
                                   labels=["device", "state"])
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


class Metrics:
    """The bridge's collectors; per-device children are bound once, then incremented per batch."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.samples_in = Counter("linebridge_samples_in", "Samples received from devices", ["device"], registry=r)
        self.batches_in = Counter("linebridge_batches_in", "Batches received from devices", ["device"], registry=r)
        self.reconnects = Counter("linebridge_reconnects", "Device reconnections after a failure", ["device"],
                                  registry=r)
        self.commands = Counter("linebridge_commands", "Commands by kind and final state", ["kind", "state"],
                                registry=r)
        self.command_seconds = Histogram(
            "linebridge_command_duration_seconds", "Command run time from start to final state", ["kind"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=r)
        self.info = Gauge("linebridge_info", "Bridge identity", ["bridge_id", "version"], registry=r)
        self._children: dict[str, tuple[Counter, Counter]] = {}
        self.device_samples: dict[str, int] = {}  # plain totals for the live table
        self._server = None

    def watch(self, bus: TelemetryBus, registry: DeviceRegistry) -> None:
        self.registry.register(_LiveCollector(bus, registry))

    def on_batch(self, batch: SampleBatch) -> None:
        children = self._children.get(batch.device_id)
        if children is None:
            children = self._children[batch.device_id] = (
                self.samples_in.labels(batch.device_id), self.batches_in.labels(batch.device_id))
        n = len(batch.aliases)
        children[0].inc(n)
        children[1].inc()
        self.device_samples[batch.device_id] = self.device_samples.get(batch.device_id, 0) + n

    def serve(self, host: str, port: int) -> int:
        """Start the HTTP endpoint; returns the bound port (port 0 picks a free one)."""
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return self._server.server_port

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
