"""Composition root: builds the parts of a bridge and owns their start and stop order."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from bridge import __version__
from bridge.api.server import ApiServer, check_exposure
from bridge.commands import CommandManager, CommandRecord
from bridge.config import Config, DeviceConfig
from bridge.discovery import Discovery
from bridge.driver_catalog import DriverCatalog
from bridge.errors import ConfigError
from bridge.metrics import Metrics
from bridge.registry import DeviceRecord, DeviceRegistry
from bridge.sessions import Backoff, DeviceSession
from bridge.telemetry import TelemetryBus
from drivers.base import DiscoveredDevice, Driver, DriverOptions, StreamHints

log = logging.getLogger(__name__)

BRIDGE_SERVICE_TYPE = "_linebridge._tcp.local."


class BridgeApp:
    """One bridge: registry, bus, sessions, commands, discovery, API and metrics, wired together."""

    def __init__(self, config: Config, drivers: DriverCatalog, insecure: bool = False) -> None:
        self.config, self.drivers = config, drivers
        self.warnings = check_exposure(config.grpc.address, insecure or config.grpc.insecure)
        self.registry = DeviceRegistry()
        self.metrics = Metrics()
        self.bus = TelemetryBus(self.registry, config.telemetry.subscriber_queue_samples,
                                config.telemetry.max_subscriptions, on_batch=self.metrics.on_batch)
        self.metrics.watch(self.bus, self.registry)
        c = config.commands
        self.commands = CommandManager(self.registry, self.driver_of, c.default_timeout_seconds,
                                       c.max_timeout_seconds, c.queue_limit, c.history, self._command_finished)
        self.sessions: dict[str, DeviceSession] = {}
        self.api = ApiServer(self, config.grpc.address, config.grpc.max_receive_message_bytes)
        self.zeroconf: AsyncZeroconf | None = None
        self.discovery: Discovery | None = None
        self._advertised: ServiceInfo | None = None
        self.grpc_port = 0
        self.metrics_port = 0
        self.started_ns = time.time_ns()
        self.started_monotonic = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start in dependency order; a failure stops what already started and re-raises."""
        try:
            if self.config.metrics.enabled:
                host, _, port = self.config.metrics.address.rpartition(":")
                try:
                    self.metrics_port = self.metrics.serve(host, int(port))
                except OSError as exc:
                    raise ConfigError(f"cannot serve metrics on {self.config.metrics.address}: {exc.strerror}") from None
            self.grpc_port = await self.api.start()
            for device in self.config.devices:
                if device.enabled:
                    self._add_configured(device)
            if self.config.discovery.enabled:
                await self._start_discovery()
            self.metrics.info.labels(self.config.bridge.id, __version__).set(1)
            for warning in self.warnings:
                log.warning(warning)
            log.info("bridge %s serving gRPC on %s", self.config.bridge.id, self.api_address)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop in reverse order: stop taking requests, stop discovery, close devices."""
        await self.api.stop(self.config.grpc.grace_seconds)
        if self.discovery is not None:
            await self.discovery.stop()
        if self.zeroconf is not None:
            if self._advertised is not None:
                await (await self.zeroconf.async_unregister_service(self._advertised))
            await self.zeroconf.async_close()
            self.zeroconf = None
        await self.commands.close()
        sessions, self.sessions = list(self.sessions.values()), {}
        await asyncio.gather(*(s.stop() for s in sessions))
        self.metrics.shutdown()

    @property
    def api_address(self) -> str:
        return f"{self.config.grpc.address.rpartition(':')[0]}:{self.grpc_port}"

    # -- devices -----------------------------------------------------------------------------
    def driver_of(self, device_id: str) -> Driver | None:
        session = self.sessions.get(device_id)
        return session.driver if session is not None else None

    def add_device(self, device_id: str, driver: str, endpoint: str, options: DriverOptions, *,
                   source: str = "config", name: str = "", hints: StreamHints | None = None) -> DeviceRecord:
        """Register a device and start its session."""
        record = self.registry.add(DeviceRecord(id=device_id, driver=driver, endpoint=endpoint, name=name,
                                                source=source))
        s = self.config.sessions

        def factory(endpoint: str) -> Driver:
            return self.drivers.create(driver, device_id, endpoint, options)

        session = DeviceSession(device_id, factory, self.registry, self.bus, hints or StreamHints(),
                                Backoff(s.backoff_initial_seconds, s.backoff_max_seconds), s.connect_timeout_seconds,
                                on_reconnect=lambda d: self.metrics.reconnects.labels(d).inc())
        self.sessions[device_id] = session
        session.start()
        return record

    def _add_configured(self, device: DeviceConfig) -> None:
        options = self.drivers.options(device.driver, device.options, "config", f"devices.{device.id}.options")
        self.add_device(device.id, device.driver, device.endpoint, options, source="config", name=device.name,
                        hints=StreamHints(device.sampling_interval, device.deadband))

    def on_discovered(self, driver: str, found: DiscoveredDevice, mdns_name: str) -> None:
        """A service was announced: new device, or the same device at a new address."""
        existing = self.registry.find(found.device_id)
        if existing is not None:
            if existing.source == "mdns" and existing.endpoint != found.endpoint:
                log.info("device %s moved to %s", found.device_id, found.endpoint)
                self.registry.update_endpoint(found.device_id, found.endpoint)
                self.sessions[found.device_id].restart()
            return
        try:
            options = self.drivers.options(driver, found.options, f"mDNS {mdns_name}")
        except ConfigError as exc:
            log.warning("ignoring mDNS service %s: %s", mdns_name, exc)
            return
        log.info("discovered %s device %s at %s", driver, found.device_id, found.endpoint)
        self.add_device(found.device_id, driver, found.endpoint, options, source="mdns", name=found.name)

    async def _start_discovery(self) -> None:
        d = self.config.discovery
        self.zeroconf = AsyncZeroconf(interfaces=list(d.interfaces))
        self.discovery = Discovery(self.drivers.service_types(), self.on_discovered, d.interfaces,
                                   d.resolve_timeout_seconds)
        await self.discovery.start(self.zeroconf)
        if d.advertise:
            host = self.config.grpc.address.rpartition(":")[0]
            address = host if host not in ("0.0.0.0", "", "[::]", "localhost") else d.interfaces[0]
            instance = self.config.bridge.id
            self._advertised = ServiceInfo(
                BRIDGE_SERVICE_TYPE, f"{instance}.{BRIDGE_SERVICE_TYPE}", port=self.grpc_port,
                addresses=[socket.inet_aton(address)], server=f"{instance}.local.",
                properties={"id": instance, "version": __version__, "api": "linebridge.v1"})
            await (await self.zeroconf.async_register_service(self._advertised, allow_name_change=True))

    def _command_finished(self, record: CommandRecord, seconds: float) -> None:
        kind = str(record.spec.kind)
        self.metrics.commands.labels(kind, record.state.name.lower()).inc()
        if seconds:
            self.metrics.command_seconds.labels(kind).observe(seconds)
