"""Fuzz target: mDNS services as the network announces them — TXT record bytes, A/AAAA addresses,
SRV port and instance name — through the bridge's discovery pipeline and each driver's from_mdns.

Contract (bridge/discovery.py, Driver.from_mdns): an unusable announcement raises InvalidArgument
(logged once, ignored); a usable one gives a device whose id is a valid device id and whose endpoint
the driver itself parses back to the announced address and port. Nothing else escapes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache

from fuzz.engine import Cursor, chunked, instrumented, run

with instrumented(__name__):
    from zeroconf import BadTypeInNameException, ServiceInfo

    from linebridge.config import DEVICE_ID
    from linebridge.devices.catalog import DriverCatalog
    from linebridge.devices.discovery import decode_txt, device_of
    from linebridge.drivers.base import DiscoveredDevice, Driver
    from linebridge.drivers.modbus.driver import parse_endpoint as modbus_endpoint
    from linebridge.drivers.opcua.driver import opc_tcp_url
    from linebridge.drivers.ur.options import UrOptions
    from linebridge.drivers.ur.options import parse_endpoint as ur_endpoint
    from linebridge.drivers.vda5050.link import parse_endpoint as vda5050_endpoint
    from linebridge.errors import ConfigError, InvalidArgument


@cache
def catalog() -> DriverCatalog:
    """The installed drivers (entry points), as the bridge loads them."""
    return DriverCatalog.from_entry_points()


@cache
def service_types() -> tuple[tuple[str, type[Driver]], ...]:
    """(mDNS service type, driver) for every driver that takes mDNS services."""
    return tuple(sorted(catalog().service_types().items()))


def announced_at(found: DiscoveredDevice, driver: type[Driver], txt: Mapping[str, str]) -> tuple[str, int]:
    """(host, port) the driver reads back from its endpoint; UR's TXT ports must be the announced numbers."""
    if driver.type_name == "modbus":
        return modbus_endpoint(found.endpoint)
    if driver.type_name == "ur":
        address = ur_endpoint(found.endpoint, UrOptions())
        for key, used in (("dashboard", address.dashboard_port), ("secondary", address.secondary_port)):
            assert key not in txt or used == int(txt[key]), f"TXT {key}={txt[key]!r} became port {used}"
        return address.host, address.rtde_port
    if driver.type_name == "vda5050":
        broker = vda5050_endpoint(found.endpoint)
        return broker.host, broker.port
    url = opc_tcp_url(found.endpoint)
    host, _, port = url.removeprefix("opc.tcp://").partition("/")[0].rpartition(":")
    return host.strip("[]"), int(port)


def check_service(
    service_type: str, driver: type[Driver], instance: str, addresses: list[bytes], port: int, txt: bytes
) -> DiscoveredDevice | None:
    """One announcement through discovery: a device that points where it was announced, or InvalidArgument."""
    try:
        info = ServiceInfo(
            service_type, f"{instance}.{service_type}", port=port, addresses=addresses, properties=txt
        )
    except BadTypeInNameException:
        return None  # Discovery._resolve ignores such a name before resolving it
    for key, value in decode_txt(info.properties).items():
        assert key.isprintable() and value.isprintable() and len(value) <= 255
    try:
        found = device_of(driver, service_type, f"{instance}.{service_type}", info)
    except InvalidArgument:
        return None
    assert DEVICE_ID.fullmatch(found.device_id), f"device id {found.device_id!r}"
    host, used_port = announced_at(found, driver, decode_txt(info.properties))
    assert host in info.parsed_addresses() and used_port == port, (
        f"{found.endpoint} is not where it was announced"
    )
    try:
        catalog().options(driver.type_name, found.options, "mDNS")
    except ConfigError:
        pass  # the bridge logs and ignores such a service
    return found


def one_input(data: bytes) -> None:
    """libFuzzer entry: driver, SRV port, addresses, instance name, then the TXT record bytes."""
    cursor = Cursor(data)
    service_type, driver = cursor.choice(service_types())
    port = cursor.uint(2)
    addresses = [
        cursor.take(16 if cursor.byte() & 1 else 4).ljust(4, b"\x00") for _ in range(cursor.byte() % 4)
    ]
    addresses = [a if len(a) in (4, 16) else a[:4] for a in addresses]
    instance = cursor.text() or "x"
    check_service(service_type, driver, instance, addresses, port, cursor.rest())


def txt_record(**values: str) -> bytes:
    """TXT rdata: length-prefixed key=value strings (RFC 6763 §6)."""
    return chunked(*(f"{k}={v}".encode() for k, v in values.items()))


def seeds() -> Iterator[bytes]:
    """A well-formed announcement for every driver."""
    records = {
        "_modbus._tcp.local.": txt_record(unit="3", map="cell-plc"),
        "_opcua-tcp._tcp.local.": txt_record(path="/ua/robot", caps="LDS,DA"),
        "_ur-rtde._tcp.local.": txt_record(dashboard="29999", secondary="30002", name="UR5 cell 7"),
    }
    for index, (service_type, _) in enumerate(service_types()):
        record = records.get(service_type, b"")
        yield bytes([index]) + b"\x13\x88\x01\x00\x7f\x00\x00\x01" + chunked(b"robot-1") + record


if __name__ == "__main__":
    run(one_input, seeds)
