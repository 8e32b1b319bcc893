"""The device lifecycle: one supervised session per device, discovery callbacks, moves and approval."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from zeroconf.asyncio import AsyncZeroconf

from linebridge.config import Config, DeviceConfig
from linebridge.devices.approval import Approvals, Pending, bare_type
from linebridge.devices.catalog import DriverCatalog
from linebridge.devices.discovery import Discovery
from linebridge.devices.gateway import GatewayDevices
from linebridge.devices.sessions import DeviceSession
from linebridge.drivers.base import (
    DeviceDescription,
    DiscoveredDevice,
    Driver,
    DriverOptions,
    MdnsService,
    StreamHints,
)
from linebridge.errors import ConfigError, DeadlineExceeded, IdentityChanged, Unavailable
from linebridge.model import AlarmReport, SampleBatch, Signal
from linebridge.pacing import Backoff
from linebridge.registry import DeviceRecord, DeviceRegistry
from linebridge.telemetry.bus import TelemetryBus
from linebridge.telemetry.guard import Counter, GuardSettings, ValueGuard

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
        on_guarded: Counter | None = None,
        on_alarm: Callable[[str, AlarmReport], None] | None = None,
    ) -> None:
        self.config, self.drivers, self.registry, self.bus = config, drivers, registry, bus
        self.approvals = approvals
        self.on_reconnect = on_reconnect
        self.on_guarded = on_guarded  # counts samples the driver boundary corrected (metrics)
        t = config.telemetry
        self.guard_settings = GuardSettings(t.max_value_bytes, t.oversize_values)
        self.on_alarm = on_alarm  # alarms a device raises itself (OPC UA A&C), for the alarm manager
        self.sessions: dict[str, DeviceSession] = {}
        self.gateway = GatewayDevices(registry, bus)  # devices behind one driver connection (AGVs)
        self.discovery: Discovery | None = None
        self._stopping = False
        self.last_good: dict[str, str] = {}  # mDNS device id -> endpoint of its last verified connection
        self._service_types: dict[str, str] = {}  # mDNS device id -> the service type it was found as
        self._announced: dict[str, str] = {}  # full mDNS name -> the device id it announces
        self._options: dict[str, tuple[str, DriverOptions]] = {}  # device id -> (driver, options)

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
            self.drivers.service_types(),
            self.on_discovered,
            d.interfaces,
            d.resolve_timeout_seconds,
            on_removed=self.on_removed,
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

    def guard_of(self, device_id: str) -> ValueGuard:
        """The driver-boundary checks of a device (its session's); also applied to direct reads."""
        session = self.sessions.get(device_id)
        return session.guard if session is not None else ValueGuard(device_id, self.guard_settings)

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
        liveness: float | None = None,
    ) -> DeviceRecord:
        """Register a device and start its session (`liveness`: seconds of silence, None = driver default)."""
        record = self.registry.add(
            DeviceRecord(id=device_id, driver=driver, endpoint=endpoint, name=name, source=source)
        )
        self._start_session(device_id, driver, options, hints, liveness)
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
            liveness=device.liveness_seconds,
        )

    def _start_session(
        self,
        device_id: str,
        driver: str,
        options: DriverOptions,
        hints: StreamHints | None,
        liveness: float | None = None,
    ) -> None:
        if self._stopping:
            return
        record = self.registry.find(device_id)
        # Found on the network: pin the identity it shows, when the driver reports one of the device's own.
        pin = record is not None and record.source == "mdns" and self.drivers.get(driver).identity_pinning
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
            on_alarm=self.on_alarm,
            verify=self._verify if pin else None,
            guard=ValueGuard(device_id, self.guard_settings, self.on_guarded),
            liveness=liveness,
            healthy_after=s.healthy_after_seconds,
        )
        self._options[device_id] = (driver, options)
        self.sessions[device_id] = session
        session.start()

    # -- discovery and approval --------------------------------------------------------------
    def on_discovered(self, driver: str, found: DiscoveredDevice, service: MdnsService) -> None:
        """A service was announced: new device (connected if approved), or the same device at a new address."""
        mdns_name = f"{service.instance}.{service.service_type}"
        existing = self.registry.find(found.device_id)
        if existing is not None:
            self._moved(existing, driver, found, service)
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
        self._service_types[found.device_id] = service.service_type
        self._announced[mdns_name] = found.device_id
        self.add_device(found.device_id, driver, found.endpoint, options, source="mdns", name=found.name)

    def _moved(
        self, existing: DeviceRecord, driver: str, found: DiscoveredDevice, service: MdnsService
    ) -> None:
        """The same device id announced again: a move, accepted only from an allowed announcement of the
        same service type (anything else changes nothing about the device)."""
        if existing.source != "mdns" or existing.endpoint == found.endpoint:
            return
        device_id, where = found.device_id, f"{service.instance}.{service.service_type}"
        if not self.approvals.allows(device_id, service):
            log.warning(
                "ignoring %s at %s: it matches no approval rule (device %s stays)",
                where,
                found.endpoint,
                device_id,
            )
            return
        known = self._service_types.get(device_id, service.service_type)
        if existing.driver != driver or bare_type(known) != bare_type(service.service_type):
            log.warning(
                "ignoring %s at %s: device %s was found as %s, and a device moves only within its service type",
                where,
                found.endpoint,
                device_id,
                bare_type(known),
            )
            return
        log.info("device %s moved to %s", device_id, found.endpoint)
        self._announced[where] = device_id
        self.registry.update_endpoint(device_id, found.endpoint)
        session = self.sessions.get(device_id)
        if session is not None and not session.held:  # not while it waits for approval
            session.restart()

    def on_removed(self, mdns_name: str) -> None:
        """An announcement went away: the device keeps (or goes back to) its last good endpoint."""
        device_id = self._announced.pop(mdns_name, None)
        record = self.registry.find(device_id) if device_id is not None else None
        good = self.last_good.get(device_id or "")
        if record is None or good is None or record.endpoint == good:
            return
        log.info("device %s: %s went away; back to its last good endpoint %s", record.id, mdns_name, good)
        self.registry.update_endpoint(record.id, good)
        session = self.sessions.get(record.id)
        if session is not None:  # a held session too: there the device showed its approved identity
            session.restart()

    async def _verify(self, device_id: str, endpoint: str, description: DeviceDescription) -> None:
        """Identity pinning: the first connection after approval records the identity; later ones must match."""
        identity = description.identity
        pinned = self.approvals.identities.get(device_id)
        if pinned is None:
            if identity:
                await self.approvals.pin(device_id, identity)
        elif identity != pinned:
            driver, options = self._options[device_id]
            self.approvals.hold(device_id, Pending(driver, options))
            raise IdentityChanged(
                f"identity changed: approved as {pinned!r}, but {endpoint} answers as {identity or 'unknown'!r}; "
                f"not used until an admin approves it again (linebridge approve {device_id})"
            )
        self.approvals.pending.pop(device_id, None)  # the approved device again: nothing to approve
        self.last_good[device_id] = endpoint

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
        if pending is None or self.registry.find(device_id) is not record:
            return record
        session = self.sessions.get(device_id)
        if session is None:
            log.info("device %s approved; connecting to %s", device_id, record.endpoint)
            self._start_session(device_id, pending.driver, pending.options, None)
        elif session.held:  # approved again after an identity change: the next connection pins the new one
            log.info("device %s approved with a new identity; connecting to %s", device_id, record.endpoint)
            session.restart()
        return record
