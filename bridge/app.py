"""Composition root: builds the parts of a bridge and owns their start and stop order."""

from __future__ import annotations

import logging
import socket
import time

from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from linebridge import __version__
from linebridge.analytics import Alarm, AlarmManager, AnalyticsEngine
from linebridge.api.server import ApiServer
from linebridge.api.services import ApiParts
from linebridge.audit.log import AuditLog
from linebridge.commands.audit import CommandAudit
from linebridge.commands.audit import who as audit_who
from linebridge.commands.gates import CommandGates
from linebridge.commands.manager import CommandManager
from linebridge.commands.types import CommandRecord
from linebridge.config import Config
from linebridge.configbase import relative_to_config
from linebridge.devices.approval import Approvals
from linebridge.devices.catalog import DriverCatalog
from linebridge.devices.discovery import Discovery
from linebridge.devices.manager import DeviceManager
from linebridge.devices.sessions import DeviceSession
from linebridge.drivers.base import Driver
from linebridge.errors import ConfigError, Unavailable
from linebridge.metrics import Metrics
from linebridge.model import AlarmReport, Identity
from linebridge.preflight import preflight
from linebridge.registry import DeviceRecord, DeviceRegistry
from linebridge.telemetry.bus import TelemetryBus
from linebridge.telemetry.guard import ValueGuard
from linebridge.transport.index import TransportIndex
from linebridge.uplink import DISABLED, Uplink, UplinkStatus

log = logging.getLogger(__name__)

BRIDGE_SERVICE_TYPE = "_linebridge._tcp.local."


class BridgeApp:
    """One bridge: registry, bus, sessions, commands, discovery, API and metrics, wired together."""

    def __init__(self, config: Config, drivers: DriverCatalog, insecure: bool = False) -> None:
        self.config, self.drivers = config, drivers
        self.warnings = preflight(config, drivers, insecure)  # the checks `run --check` makes too
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
            AuditLog(
                config.audit,
                config.audit.directory(config.base_dir),
                config.bridge.id,
                config.audit.key_path(config.base_dir),
            )
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
            max_value_bytes=c.max_value_bytes,
            audit=CommandAudit(self.audit, config.audit.max_value_chars) if self.audit is not None else None,
        )
        d = config.discovery
        self.approvals = Approvals(
            d.auto_approve,
            relative_to_config(d.approvals_file, config.base_dir) if d.approvals_file else None,
        )
        self.devices = DeviceManager(
            config,
            drivers,
            self.registry,
            self.bus,
            self.approvals,
            on_reconnect=lambda d: self.metrics.reconnects.labels(d).inc(),
            on_guarded=self.metrics.on_guarded,
            on_alarm=self._device_alarm,
        )
        self.alarms = AlarmManager(config.analytics.history, self._audit_alarm)
        self.analytics = AnalyticsEngine(config.analytics, self.registry, self.bus, self.alarms)
        self.alarms.forwarders["device"] = self._forward_ack
        self.alarms.confirm_forwarders["device"] = self._forward_confirm
        self.uplink = (
            Uplink(
                config.uplink,
                config.bridge.id,
                self.registry,
                self.bus,
                self.commands,
                config.base_dir,
                audit_head=self._audit_head_text if self.audit is not None else None,
            )
            if config.uplink.enabled
            else None
        )
        self.metrics.watch_uplink(self.uplink_status)
        self.transport = TransportIndex(self.registry, self.bus, config.transport)
        self.started_ns = time.time_ns()
        self.started_monotonic = time.monotonic()
        parts = ApiParts(
            self.registry,
            self.bus,
            self.commands,
            self.devices,
            self.uplink_status,
            config.bridge.id,
            drivers.names(),
            self.warnings,
            self.started_ns,
            self.started_monotonic,
            self.audit.head if self.audit is not None else None,
            transport=self.transport,
            alarms=self.alarms,
            analytics=self.analytics,
        )
        self.api = ApiServer(parts, config)
        if self.commands.audit is not None:  # calls refused before they became commands are audited too
            self.api.auth.on_denied = self.commands.audit.call_denied
        self.zeroconf: AsyncZeroconf | None = None
        self._advertised: ServiceInfo | None = None
        self.grpc_port = 0
        self.metrics_port = 0

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
            if self.config.analytics.enabled:
                self.analytics.start()
            self.grpc_port = await self.api.start()
            if self.uplink is not None:  # before the devices, so it sees their first batch
                await self.uplink.start()
            self.devices.start()
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
        self.devices.refuse_new()  # a late mDNS answer or approval must not start a session now
        await self.api.stop(self.config.grpc.grace_seconds)
        if self.uplink is not None:  # while devices are still up: NDEATH, not a DDEATH per device
            await self.uplink.stop()
        await self.devices.stop_discovery()
        if self.zeroconf is not None:
            if self._advertised is not None:
                await (await self.zeroconf.async_unregister_service(self._advertised))
            await self.zeroconf.async_close()
            self.zeroconf = None
        await self.commands.close()
        await self.transport.stop()
        if self.audit is not None:
            await self.audit.close()
        await self.devices.stop()
        await self.analytics.stop()
        self.metrics.shutdown()

    # -- alarms (issue 14) -----------------------------------------------------------------------
    def _device_alarm(self, device_id: str, report: AlarmReport) -> None:
        """An alarm the device raised itself (OPC UA A&C): into the alarm manager as source "device"."""
        self.alarms.report(
            device_id,
            report.name,
            report.active,
            severity=report.severity,
            message=report.message,
            source="device",
            acked=report.acked,
            confirmed=report.confirmed,
        )

    async def _forward_ack(self, alarm: Alarm, comment: str, who: Identity) -> None:
        """An operator acknowledged a device's alarm: the device acknowledges it too (OPC UA Part 9 §5.7.3)."""
        driver = self.driver_of(alarm.device_id)
        if driver is None:
            raise Unavailable(f"device {alarm.device_id!r} is not online: cannot forward the acknowledgement")
        await driver.acknowledge_alarm(alarm.name, f"{comment} ({who.name})" if comment else who.name)

    async def _forward_confirm(self, alarm: Alarm, comment: str, who: Identity) -> None:
        """An operator confirmed a device's alarm: the device confirms it too (OPC UA Part 9 §5.7.4)."""
        driver = self.driver_of(alarm.device_id)
        if driver is None:
            raise Unavailable(f"device {alarm.device_id!r} is not online: cannot forward the confirmation")
        await driver.confirm_alarm(alarm.name, f"{comment} ({who.name})" if comment else who.name)

    def _audit_alarm(self, action: str, alarm: Alarm, who: Identity, detail: dict) -> None:
        """Acknowledgements and shelving are audit-logged like commands."""
        if self.commands.audit is not None:
            self.commands.audit.event(
                "control_system_event",
                action,
                "success",
                who=audit_who(who),
                what={"alarm": alarm.id, **detail},
            )

    def uplink_status(self) -> UplinkStatus:
        """What the uplink reports about itself (DISABLED without an uplink)."""
        return self.uplink.status() if self.uplink is not None else DISABLED

    def _audit_head_text(self) -> str:
        """The audit chain head as the uplink publishes it: "<file>:<seq>:<hash>" ("" before any record)."""
        assert self.audit is not None
        head = self.audit.head()
        return f"{head.segment}:{head.seq}:{head.hash}" if head.seq else ""

    @property
    def api_address(self) -> str:
        """The host:port the gRPC API listens on."""
        return f"{self.config.grpc.address.rpartition(':')[0]}:{self.grpc_port}"

    # -- devices (the lifecycle is in DeviceManager; these keep the bridge's old surface) -------
    @property
    def sessions(self) -> dict[str, DeviceSession]:
        """The device sessions, by device id."""
        return self.devices.sessions

    @property
    def discovery(self) -> Discovery | None:
        """The running mDNS discovery, if any."""
        return self.devices.discovery

    def driver_of(self, device_id: str) -> Driver | None:
        """The connected driver of a device, if any."""
        return self.devices.driver_of(device_id)

    def guard_of(self, device_id: str) -> ValueGuard:
        """The driver-boundary checks of a device (see DeviceManager.guard_of)."""
        return self.devices.guard_of(device_id)

    def add_device(self, *args, **kwargs) -> DeviceRecord:
        """Register a device and start its session (see DeviceManager.add_device)."""
        return self.devices.add_device(*args, **kwargs)

    async def approve(self, device_id: str) -> DeviceRecord:
        """Let a discovered device connect (see DeviceManager.approve)."""
        return await self.devices.approve(device_id)

    async def _start_discovery(self) -> None:
        d = self.config.discovery
        self.zeroconf = AsyncZeroconf(interfaces=list(d.interfaces))
        await self.devices.start_discovery(self.zeroconf)
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
