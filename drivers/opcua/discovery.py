"""mDNS service -> OPC UA device, validating what the network told us (OPC 10000-12 Annex C)."""

from __future__ import annotations

import ipaddress
import re

from linebridge.drivers.base import DiscoveredDevice, InvalidArgument, MdnsService

MAX_INSTANCE = 63  # DNS-SD instance names are one DNS label: at most 63 bytes (RFC 6763 §4.1.1)
MAX_TXT_VALUE = 255  # one TXT string is at most 255 bytes (RFC 6763 §6.1)
MAX_CAPABILITY = 8  # OPC 10000-12 Annex C.2: capability identifiers are <= 8 characters
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_SLUG_JUNK = re.compile(r"[^a-z0-9._-]+")
_CAPABILITY = re.compile(rf"^[A-Za-z0-9]{{1,{MAX_CAPABILITY}}}$")


def device_from_service(service: MdnsService) -> DiscoveredDevice:
    """The device an `_opcua-tcp._tcp` service announces; InvalidArgument for junk values."""
    instance = _text("instance name", service.instance, MAX_INSTANCE)
    host = _host(service.host)
    port = _port(service.port)
    properties = {
        _text("TXT key", k, MAX_TXT_VALUE): _text(f"TXT {k!r}", v, MAX_TXT_VALUE, allow_empty=True)
        for k, v in service.properties.items()
    }
    path = properties.get("path", "/") or "/"
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise InvalidArgument(f"mDNS TXT path must start with '/' and contain no spaces, got {path!r}")
    for capability in filter(None, properties.get("caps", "").split(",")):
        if not _CAPABILITY.match(capability):
            raise InvalidArgument(f"mDNS TXT caps entry {capability!r} is not a capability identifier")
    device_id = _SLUG_JUNK.sub("-", instance.lower()).strip("-.")
    if not device_id:
        raise InvalidArgument(f"mDNS instance name {instance!r} leaves no usable device id")
    authority = f"[{host}]" if ":" in host else host
    return DiscoveredDevice(
        device_id=device_id, endpoint=f"opc.tcp://{authority}:{port}{path}", name=instance
    )


def _text(what: str, value: object, limit: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"mDNS {what} must be text, got {type(value).__name__}")
    if not value.strip() and not allow_empty:
        raise InvalidArgument(f"mDNS {what} is empty")
    if len(value) > limit:
        raise InvalidArgument(f"mDNS {what} is {len(value)} characters long; at most {limit} allowed")
    if not value.isprintable():
        raise InvalidArgument(f"mDNS {what} {value[:40]!r} contains non-printable characters")
    return value


def _host(host: object) -> str:
    if not isinstance(host, str) or not host:
        raise InvalidArgument(f"mDNS host must be an address or host name, got {host!r}")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    name = host.removesuffix(".")
    if len(name) > 253 or not all(_HOST_LABEL.match(label) for label in name.split(".")):
        raise InvalidArgument(f"mDNS host {host[:80]!r} is neither an IP address nor a valid host name")
    return name


def _port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidArgument(f"mDNS port must be 1..65535, got {port!r}")
    return port
