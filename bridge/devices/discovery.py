"""Zeroconf discovery: one browser for every service type the drivers declare."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Mapping, Sequence

from zeroconf import BadTypeInNameException, ServiceInfo, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from linebridge.config import DEVICE_ID
from linebridge.drivers.base import DiscoveredDevice, Driver, MdnsService
from linebridge.errors import InvalidArgument

log = logging.getLogger(__name__)

Found = Callable[
    [str, DiscoveredDevice, MdnsService], None
]  # (driver type, device, the service it came from)

MAX_TXT_VALUE = 255  # RFC 6763 §6.1: one TXT string is at most 255 bytes


def decode_txt(properties: Mapping[bytes, bytes | None]) -> dict[str, str]:
    """TXT records as text; keys or values that are not printable UTF-8 are dropped."""
    out: dict[str, str] = {}
    for raw_key, raw_value in properties.items():
        try:
            key = raw_key.decode("ascii").lower()
            value = "" if raw_value is None else raw_value.decode("utf-8")
        except (UnicodeDecodeError, AttributeError):
            continue
        if key.isprintable() and value.isprintable() and len(value) <= MAX_TXT_VALUE:
            out[key] = value
    return out


def pick_address(addresses: Sequence[str]) -> str:
    """The first usable IPv4 address (loopback included); InvalidArgument when there is none."""
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if address.version == 4 and not (address.is_multicast or address.is_unspecified):
            return text
    raise InvalidArgument(f"no usable IPv4 address in {list(addresses)}")


def instance_of(name: str, service_type: str) -> str:
    """'robot-1._opcua-tcp._tcp.local.' -> 'robot-1'."""
    suffix = "." + service_type
    return name[: -len(suffix)] if name.endswith(suffix) else name.split(".", 1)[0]


def service_of(service_type: str, name: str, info: ServiceInfo) -> MdnsService:
    """A resolved service as drivers see it; InvalidArgument when it has no usable address."""
    return MdnsService(
        service_type=service_type,
        instance=instance_of(name, service_type),
        host=pick_address(info.parsed_addresses()),
        port=int(info.port or 0),
        properties=decode_txt(info.properties),
    )


def device_of(driver: type[Driver], service_type: str, name: str, info: ServiceInfo) -> DiscoveredDevice:
    """What `driver` makes of a resolved service; InvalidArgument when anything in it is unusable."""
    return device_from(driver, service_of(service_type, name, info))


def device_from(driver: type[Driver], service: MdnsService) -> DiscoveredDevice:
    """What `driver` makes of `service`; InvalidArgument when it refuses it or makes an unusable id."""
    device = driver.from_mdns(service)
    # The id names the device in paths and Sparkplug topics: '/', '+', '#' or spaces would break both.
    if not DEVICE_ID.fullmatch(device.device_id):
        raise InvalidArgument(
            f"{driver.type_name} made device id {device.device_id!r} of instance "
            f"{service.instance!r}: not lowercase letters, digits, '.', '_', '-' (at most 63)"
        )
    return device


class Discovery:
    """Browses for the drivers' service types and reports each usable service once per change."""

    def __init__(
        self,
        service_types: Mapping[str, type[Driver]],
        on_found: Found,
        interfaces: Sequence[str],
        resolve_timeout: float = 3.0,
        on_removed: Callable[[str], None] | None = None,
    ) -> None:
        self._types = dict(service_types)
        self._on_found = on_found
        self._on_removed = on_removed  # called with the full mDNS name of a service that went away
        self._interfaces = list(interfaces)
        self._timeout_ms = int(resolve_timeout * 1000)
        self.zeroconf: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._rejected: set[tuple[str, str]] = set()
        self._stopped = False

    async def start(self, zeroconf: AsyncZeroconf | None = None) -> None:
        """Browse for every service type the drivers declare."""
        # Explicit interfaces: never multicast on every NIC of the machine by default.
        self.zeroconf = zeroconf or AsyncZeroconf(interfaces=self._interfaces)
        if self._types:
            self._browser = AsyncServiceBrowser(
                self.zeroconf.zeroconf, list(self._types), handlers=[self._on_change]
            )

    async def stop(self) -> None:
        """Stop browsing and cancel pending resolves."""
        self._stopped = True  # the browser may still call back while it is being cancelled
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if self._stopped:
            return
        if state_change is ServiceStateChange.Removed:
            log.info("mDNS service %s went away", name)
            if self._on_removed is not None:
                self._on_removed(name)
            return
        task = asyncio.get_running_loop().create_task(self._resolve(service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        assert self.zeroconf is not None
        try:
            info = AsyncServiceInfo(service_type, name)
        except BadTypeInNameException as exc:  # a PTR record may name any instance; zeroconf refuses some
            self._ignore(name, str(exc))
            return
        if not await info.async_request(self.zeroconf.zeroconf, self._timeout_ms):
            log.warning("mDNS service %s did not resolve within %d ms", name, self._timeout_ms)
            return
        driver = self._types.get(service_type)
        if driver is None:
            return
        try:
            service = service_of(service_type, name, info)
            device = device_from(driver, service)
        except InvalidArgument as exc:
            self._ignore(name, str(exc))
            return
        self._on_found(driver.type_name, device, service)

    def _ignore(self, name: str, reason: str) -> None:
        key = (name, reason)
        if key not in self._rejected:  # say it once, not at every re-announcement
            self._rejected.add(key)
            log.warning("ignoring mDNS service %r: %s", name, reason)
