"""OPC UA addresses: NodeIds of signals and methods, opc.tcp URLs, values encoded for a write or call."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from asyncua import ua

from linebridge.drivers.base import InvalidArgument, MethodSpec, Signal, Value
from linebridge.drivers.opcua.conversion import UA_TYPES_BY_NAME, encode

DEFAULT_PORT = 4840  # IANA-registered opc.tcp port (OPC 10000-6 §7.2)


@functools.lru_cache(maxsize=65536)
def _parse_node_id(text: str) -> ua.NodeId:
    return ua.NodeId.from_string(text)


def node_id_of(address: object) -> ua.NodeId:
    """The NodeId a Signal/MethodSpec address names (a NodeId string such as "ns=2;s=Robot/Speed")."""
    if isinstance(address, ua.NodeId):
        return address
    if not isinstance(address, str):
        raise InvalidArgument(f"OPC UA address must be a NodeId string, got {address!r}")
    try:
        return _parse_node_id(address)
    except Exception:
        raise InvalidArgument(f"OPC UA address {address!r} is not a NodeId") from None


def opc_tcp_url(endpoint: str) -> str:
    """`endpoint` as a complete opc.tcp URL (port 4840 when none is given); InvalidArgument otherwise."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise InvalidArgument(f"endpoint {endpoint!r} is not a URL: {exc}") from None
    if parts.scheme != "opc.tcp" or not parts.hostname:
        raise InvalidArgument(f"endpoint {endpoint!r} must look like opc.tcp://host:port/path")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"opc.tcp://{host}:{port}{parts.path or '/'}"


def variant_of(signal: Signal, value: Value) -> ua.Variant:
    """`value` encoded as the signal's OPC UA type; the error names the signal."""
    ua_type = UA_TYPES_BY_NAME.get(signal.source_type)
    if ua_type is None:
        raise InvalidArgument(f"{signal.path}: unknown OPC UA type {signal.source_type!r}")
    try:
        return encode(value, ua_type)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{signal.path}: {exc}") from None


def encode_arg(method: MethodSpec, index: int, value: Value, ua_type: object) -> ua.Variant:
    """One method argument encoded as its declared type; the error names the method and argument."""
    try:
        return encode(value, ua_type)  # type: ignore[arg-type]
    except InvalidArgument as exc:
        name = method.inputs[index].name if index < len(method.inputs) else str(index)
        raise InvalidArgument(f"method {method.name} argument {name}: {exc}") from None


def method_address(method: MethodSpec) -> tuple[ua.NodeId, ua.NodeId]:
    """The (object, method) NodeIds a MethodSpec calls."""
    address = method.address
    if not isinstance(address, tuple | list) or len(address) != 2:
        raise InvalidArgument(f"method {method.name} has no (object, method) NodeId address")
    return node_id_of(address[0]), node_id_of(address[1])
