"""The device lifecycle: one supervised session per device, discovery callbacks, moves and approval."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from zeroconf.asyncio import AsyncZeroconf

from linebridge.config import Config, DeviceConfig
from linebridge.devices.approval import Approvals, Pending
from linebridge.devices.catalog import DriverCatalog
from linebridge.devices.discovery import Discovery
from linebridge.devices.gateway import GatewayDevices
from linebridge.devices.sessions import Backoff, DeviceSession
from linebridge.drivers.base import DiscoveredDevice, Driver, DriverOptions, MdnsService, StreamHints
from linebridge.errors import ConfigError, DeadlineExceeded, Unavailable
from linebridge.model import SampleBatch, Signal
from linebridge.registry import DeviceRecord, DeviceRegistry
from linebridge.telemetry.bus import TelemetryBus

log = logging.getLogger(__name__)


class DeviceManager:
    """Starts and stops device sessions, for configured devices and for approved mDNS discoveries."""

    def __init__(
        self,
        config: Config,
        drivers: DriverCatalog,
        registry: DeviceRegistry,
        bus: TelemetryBus,
        approvals: Approvals,
        on_reconnect: Callable[[str], None] | None = None,
    ) -> None:
        self.config, self.drivers, self.registry, self.bus = config, drivers, registry, bus
        self.approvals = approvals
        self.on_reconnect = on_reconnect
        self.sessions: dict[str, DeviceSession] = {}
        self.gateway = GatewayDevices(registry, bus)  # devices behind one driver connection (AGVs)
        self.discovery: Discovery | None = None
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start a session for every enabled configured device."""
        for device in self.config.devices:
            if device.enabled:
                self.add_configured(device)

    async def start_discovery(self, zeroconf: AsyncZeroconf) -> None:
        """Browse for the service types of every driver; announcements reach `on_discovered`."""
        d = self.config.discovery
        self.discovery = Discovery(
            self.drivers.service_types(), self.on_discovered, d.interfaces, d.resolve_timeout_seconds
        )
        await self.discovery.start(zeroconf)

    def refuse_new(self) -> None:
        """From now on no announcement or approval starts a session (the bridge is stopping)."""
        self._stopping = True

    async def stop_discovery(self) -> None:
        """Stop browsing; from now on no announcement or approval starts a session."""
        self.refuse_new()
        if self.discovery is not None:
            await self.discovery.stop()

    async def stop(self) -> None:
        """Stop every session (and discovery, when still running)."""
        await self.stop_discovery()
        sessions, self.sessions = list(self.sessions.values()), {}
        await asyncio.gather(*(s.stop() for s in sessions))

    # -- devices -----------------------------------------------------------------------------
    def driver_of(self, device_id: str) -> Driver | None:
        """The connected driver of a device, or None."""
        session = self.sessions.get(device_id)
        return session.driver if session is not None else self.gateway.driver_of(device_id)

    async def read(self, device_id: str, signals: Sequence[Signal], timeout: float | None) -> SampleBatch:
        """Read signals from the device itself, within `timeout` seconds (None: no deadline)."""
        driver = self.driver_of(device_id)
        if driver is None:
            raise Unavailable(f"device {device_id!r} is not online")
        if timeout is not None and timeout <= 0:
            raise DeadlineExceeded(f"no time left to read from device {device_id!r}")
        try:
            return await asyncio.wait_for(driver.read(signals), timeout)
        except TimeoutError:
            raise DeadlineExceeded(
                f"device {device_id!r} did not answer a read within {timeout:.3f} s"
            ) from None

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

    def add_configured(self, device: DeviceConfig) -> None:
        """Register a device from the config file and start its session."""
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
            on_reconnect=self.on_reconnect,
        )
        self.sessions[device_id] = session
        session.start()

    # -- discovery and approval --------------------------------------------------------------
    def on_discovered(self, driver: str, found: DiscoveredDevice, service: MdnsService) -> None:
        """A service was announced: new device (connected if approved), or the same device at a new address."""
        mdns_name = f"{service.instance}.{service.service_type}"
        existing = self.registry.find(found.device_id)
        if existing is not None:
            self._moved(existing, found)
            return
        try:
            options = self.drivers.options(driver, found.options, f"mDNS {mdns_name}")
        except ConfigError as exc:
            log.warning("ignoring mDNS service %s: %s", mdns_name, exc)
            return
        if not self.approvals.allows(found.device_id, service):
            self._hold(driver, found, options)
            return
        log.info("discovered %s device %s at %s", driver, found.device_id, found.endpoint)
        self.add_device(found.device_id, driver, found.endpoint, options, source="mdns", name=found.name)

    def _moved(self, existing: DeviceRecord, found: DiscoveredDevice) -> None:
        if existing.source == "mdns" and existing.endpoint != found.endpoint:
            log.info("device %s moved to %s", found.device_id, found.endpoint)
            self.registry.update_endpoint(found.device_id, found.endpoint)
            if found.device_id in self.sessions:  # not while it waits for approval
                self.sessions[found.device_id].restart()

    def _hold(self, driver: str, found: DiscoveredDevice, options: DriverOptions) -> None:
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

    async def approve(self, device_id: str) -> DeviceRecord:
        """Let a discovered device connect (NotFound when unknown; a device already allowed stays as it is)."""
        record = self.registry.get(device_id)
        pending = await self.approvals.approve(device_id)
        if pending is not None and device_id not in self.sessions and self.registry.find(device_id) is record:
            log.info("device %s approved; connecting to %s", device_id, record.endpoint)
            self._start_session(device_id, pending.driver, pending.options, None)
        return record
