"""Composition root: builds the parts of a bridge and owns their start and stop order."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from linebridge import __version__
from linebridge.api.auth import resolve
from linebridge.api.server import ApiServer, check_exposure
from linebridge.audit.log import AuditLog
from linebridge.commands.audit import CommandAudit
from linebridge.commands.gates import CommandGates
from linebridge.commands.manager import CommandManager, CommandRecord
from linebridge.config import Config, DeviceConfig
from linebridge.devices.approval import Approvals, Pending
from linebridge.devices.catalog import DriverCatalog
from linebridge.devices.discovery import Discovery
from linebridge.devices.gateway import GatewayDevices
from linebridge.devices.sessions import Backoff, DeviceSession
from linebridge.drivers.base import DiscoveredDevice, Driver, DriverOptions, MdnsService, StreamHints
from linebridge.errors import ConfigError
from linebridge.metrics import Metrics
from linebridge.registry import DeviceRecord, DeviceRegistry
from linebridge.telemetry.bus import TelemetryBus
from linebridge.transport.index import TransportIndex
from linebridge.uplink import DISABLED, Uplink, UplinkStatus

log = logging.getLogger(__name__)

BRIDGE_SERVICE_TYPE = "_linebridge._tcp.local."


class BridgeApp:
    """One bridge: registry, bus, sessions, commands, discovery, API and metrics, wired together."""

    def __init__(self, config: Config, drivers: DriverCatalog, insecure: bool = False) -> None:
        self.config, self.drivers = config, drivers
        sec = config.security
        self.warnings = check_exposure(
            config.grpc.address, insecure or config.grpc.insecure, sec.tls.enabled, sec.authentication
        )
        self.registry = DeviceRegistry()
        self.metrics = Metrics()
        self.bus = TelemetryBus(
            self.registry,
            config.telemetry.subscriber_queue_samples,
            config.telemetry.max_subscriptions,
            on_batch=self.metrics.on_batch,
        )
        self.metrics.watch(self.bus, self.registry)
        self.audit = (
            AuditLog(config.audit, config.audit.directory(config.base_dir), config.bridge.id)
            if config.audit.enabled
            else None
        )
        if self.audit is None:
            self.warnings.append("the audit log is off (audit.enabled: false): commands run unaudited")
        c = config.commands
        gates = CommandGates.from_config(
            config.policies,
            {d.id: d.policy for d in config.devices if d.policy},
            c.rate_limits,
            self.bus.value_of,
        )
        self.commands = CommandManager(
            self.registry,
            self.driver_of,
            c.default_timeout_seconds,
            c.max_timeout_seconds,
            c.queue_limit,
            c.history,
            self._command_finished,
            gates=gates,
            deadman_interval=c.deadman_interval_seconds,
            audit=CommandAudit(self.audit, config.audit.max_value_chars) if self.audit is not None else None,
        )
        self.sessions: dict[str, DeviceSession] = {}
        self.gateway = GatewayDevices(self.registry, self.bus)  # devices behind one driver connection
        self.transport = TransportIndex(self.registry, self.bus, config.transport)
        self.uplink = (
            Uplink(config.uplink, config.bridge.id, self.registry, self.bus, self.commands, config.base_dir)
            if config.uplink.enabled
            else None
        )
        self.metrics.watch_uplink(self.uplink_status)
        self.api = ApiServer(self, config)
        if self.commands.audit is not None:  # calls refused before they became commands are audited too
            self.api.auth.on_denied = self.commands.audit.call_denied
        d = config.discovery
        self.approvals = Approvals(
            d.auto_approve, resolve(d.approvals_file, config.base_dir) if d.approvals_file else None
        )
        self.zeroconf: AsyncZeroconf | None = None
        self.discovery: Discovery | None = None
        self._advertised: ServiceInfo | None = None
        self.grpc_port = 0
        self.metrics_port = 0
        self._stopping = False
        self.started_ns = time.time_ns()
        self.started_monotonic = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start in dependency order; a failure stops what already started and re-raises."""
        try:
            if self.audit is not None:  # before the API: no command may arrive before its log is open
                await self.audit.open()
            if self.config.metrics.enabled:
                host, _, port = self.config.metrics.address.rpartition(":")
                try:
                    self.metrics_port = self.metrics.serve(host, int(port))
                except OSError as exc:
                    raise ConfigError(
                        f"cannot serve metrics on {self.config.metrics.address}: {exc.strerror}"
                    ) from None
            self.transport.start()
            self.grpc_port = await self.api.start()
            if self.uplink is not None:  # before the devices, so it sees their first batch
                await self.uplink.start()
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
        self._stopping = True  # a late mDNS answer or approval must not start a session now
        await self.api.stop(self.config.grpc.grace_seconds)
        if self.uplink is not None:  # while devices are still up: NDEATH, not a DDEATH per device
            await self.uplink.stop()
        if self.discovery is not None:
            await self.discovery.stop()
        if self.zeroconf is not None:
            if self._advertised is not None:
                await (await self.zeroconf.async_unregister_service(self._advertised))
            await self.zeroconf.async_close()
            self.zeroconf = None
        await self.commands.close()
        await self.transport.stop()
        if self.audit is not None:
            await self.audit.close()
        sessions, self.sessions = list(self.sessions.values()), {}
        await asyncio.gather(*(s.stop() for s in sessions))
        self.metrics.shutdown()

    def uplink_status(self) -> UplinkStatus:
        return self.uplink.status() if self.uplink is not None else DISABLED

    @property
    def api_address(self) -> str:
        return f"{self.config.grpc.address.rpartition(':')[0]}:{self.grpc_port}"

    # -- devices -----------------------------------------------------------------------------
    def driver_of(self, device_id: str) -> Driver | None:
        session = self.sessions.get(device_id)
        return session.driver if session is not None else self.gateway.driver_of(device_id)

    def add_device(
        self,
        device_id: str,
        driver: str,
        endpoint: str,
        options: DriverOptions,
        *,
        source: str = "config",
        name: str = "",
        hints: StreamHints | None = None,
    ) -> DeviceRecord:
        """Register a device and start its session."""
        record = self.registry.add(
            DeviceRecord(id=device_id, driver=driver, endpoint=endpoint, name=name, source=source)
        )
        self._start_session(device_id, driver, options, hints)
        return record

    def _start_session(
        self, device_id: str, driver: str, options: DriverOptions, hints: StreamHints | None
    ) -> None:
        if self._stopping:
            return
        s = self.config.sessions

        def factory(endpoint: str) -> Driver:
            host = self.gateway.host_for(device_id, driver, endpoint)
            return self.drivers.create(driver, device_id, endpoint, options, host)

        session = DeviceSession(
            device_id,
            factory,
            self.registry,
            self.bus,
            hints or StreamHints(),
            Backoff(s.backoff_initial_seconds, s.backoff_max_seconds),
            s.connect_timeout_seconds,
            on_reconnect=lambda d: self.metrics.reconnects.labels(d).inc(),
        )
        self.sessions[device_id] = session
        session.start()

    def _add_configured(self, device: DeviceConfig) -> None:
        options = self.drivers.options(
            device.driver, device.options, "config", f"devices.{device.id}.options", self.config.base_dir
        )
        self.add_device(
            device.id,
            device.driver,
            device.endpoint,
            options,
            source="config",
            name=device.name,
            hints=StreamHints(device.sampling_interval, device.deadband),
        )

    def on_discovered(self, driver: str, found: DiscoveredDevice, service: MdnsService) -> None:
        """A service was announced: new device (connected if approved), or the same device at a new address."""
        mdns_name = f"{service.instance}.{service.service_type}"
        existing = self.registry.find(found.device_id)
        if existing is not None:
            if existing.source == "mdns" and existing.endpoint != found.endpoint:
                log.info("device %s moved to %s", found.device_id, found.endpoint)
                self.registry.update_endpoint(found.device_id, found.endpoint)
                if found.device_id in self.sessions:  # not while it waits for approval
                    self.sessions[found.device_id].restart()
            return
        try:
            options = self.drivers.options(driver, found.options, f"mDNS {mdns_name}")
        except ConfigError as exc:
            log.warning("ignoring mDNS service %s: %s", mdns_name, exc)
            return
        if not self.approvals.allows(found.device_id, service):
            log.warning(
                "discovered %s device %s at %s; it matches no discovery.auto_approve rule and waits for an "
                "admin: linebridge approve %s",
                driver,
                found.device_id,
                found.endpoint,
                found.device_id,
            )
            self.approvals.hold(found.device_id, Pending(driver, options))
            self.registry.add(
                DeviceRecord(
                    id=found.device_id,
                    driver=driver,
                    endpoint=found.endpoint,
                    name=found.name,
                    source="mdns",
                    state_reason="waiting for approval by an admin",
                )
            )
            return
        log.info("discovered %s device %s at %s", driver, found.device_id, found.endpoint)
        self.add_device(found.device_id, driver, found.endpoint, options, source="mdns", name=found.name)

    async def approve(self, device_id: str) -> DeviceRecord:
        """Let a discovered device connect (NotFound when unknown; a device already allowed stays as it is)."""
        record = self.registry.get(device_id)
        pending = await self.approvals.approve(device_id)
        if pending is not None and device_id not in self.sessions and self.registry.find(device_id) is record:
            log.info("device %s approved; connecting to %s", device_id, record.endpoint)
            self._start_session(device_id, pending.driver, pending.options, None)
        return record

    async def _start_discovery(self) -> None:
        d = self.config.discovery
        self.zeroconf = AsyncZeroconf(interfaces=list(d.interfaces))
        self.discovery = Discovery(
            self.drivers.service_types(), self.on_discovered, d.interfaces, d.resolve_timeout_seconds
        )
        await self.discovery.start(self.zeroconf)
        if d.advertise:
            host = self.config.grpc.address.rpartition(":")[0]
            address = host if host not in ("0.0.0.0", "", "[::]", "localhost") else d.interfaces[0]
            instance = self.config.bridge.id
            self._advertised = ServiceInfo(
                BRIDGE_SERVICE_TYPE,
                f"{instance}.{BRIDGE_SERVICE_TYPE}",
                port=self.grpc_port,
                addresses=[socket.inet_aton(address)],
                server=f"{instance}.local.",
                properties={"id": instance, "version": __version__, "api": "linebridge.v1"},
            )
            await (await self.zeroconf.async_register_service(self._advertised, allow_name_change=True))

    def _command_finished(self, record: CommandRecord, seconds: float) -> None:
        kind = str(record.spec.kind)
        self.metrics.commands.labels(kind, record.state.name.lower()).inc()
        if seconds:
            self.metrics.command_seconds.labels(kind).observe(seconds)
