"""An independent Sparkplug B codec for tests, written only from the Sparkplug 3.0 specification.

It reads the protobuf wire format by hand (varints, fixed32/64, length-delimited fields) following the
payload definition in the spec's chapter 6, and shares no code with bridge/uplink: if the bridge's
encoder and this decoder agree, they agree with the spec, not merely with each other.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

# Sparkplug 3.0, Payloads > Data Types: basic datatypes (the ones a metric value can carry directly)
DATATYPES = {
    1: "Int8",
    2: "Int16",
    3: "Int32",
    4: "Int64",
    5: "UInt8",
    6: "UInt16",
    7: "UInt32",
    8: "UInt64",
    9: "Float",
    10: "Double",
    11: "Boolean",
    12: "String",
    13: "DateTime",
    14: "Text",
    15: "UUID",
    17: "Bytes",
    18: "File",
}
# Which Metric.value field each datatype must use (Data Types: "Google Protocol Buffer Type")
VALUE_FIELD = {
    "Int8": 10,
    "Int16": 10,
    "Int32": 10,
    "UInt8": 10,
    "UInt16": 10,
    "UInt32": 10,
    "Int64": 11,
    "UInt64": 11,
    "DateTime": 11,
    "Float": 12,
    "Double": 13,
    "Boolean": 14,
    "String": 15,
    "Text": 15,
    "UUID": 15,
    "Bytes": 16,
    "File": 16,
}
DATATYPE_ID = {name: number for number, name in DATATYPES.items()}


class DecodeError(ValueError):
    """Not a valid Sparkplug B payload."""


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DecodeError("varint too long")


def wire_fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) for every field: ints for varint/fixed, bytes for length-delimited."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError("field number 0")
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise DecodeError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise DecodeError("truncated field")
        out.append((number, wire, value))
    return out


@dataclass
class Metric:
    """One decoded metric."""

    name: str | None = None
    alias: int | None = None
    timestamp: int | None = None
    datatype: int | None = None
    is_historical: bool = False
    is_null: bool = False
    properties: dict[str, Any] = field(default_factory=dict)
    value_field: int | None = None
    raw_value: Any = None

    def value(self, datatype: int | None = None) -> Any:
        """The value interpreted by its datatype (this metric's, or the one from its birth)."""
        kind = DATATYPES.get(datatype if datatype is not None else self.datatype or 0)
        if self.is_null:
            return None
        if kind is None or VALUE_FIELD[kind] != self.value_field:
            raise DecodeError(f"value in field {self.value_field} does not fit datatype {kind}")
        raw = self.raw_value
        if kind in ("Int8", "Int16", "Int32"):
            return raw - (1 << 32) if raw >= 1 << 31 else raw
        if kind == "Int64":
            return raw - (1 << 64) if raw >= 1 << 63 else raw
        if kind == "Double":
            return struct.unpack("<d", raw)[0]
        if kind == "Float":
            return struct.unpack("<f", raw)[0]
        if kind == "Boolean":
            return bool(raw)
        if kind in ("String", "Text", "UUID"):
            return raw.decode("utf-8")
        return raw


@dataclass
class Payload:
    """One decoded Sparkplug B payload."""

    timestamp: int | None = None
    seq: int | None = None
    uuid: str | None = None
    metrics: list[Metric] = field(default_factory=list)


def _properties(buf: bytes) -> dict[str, Any]:
    keys, values = [], []
    for number, _, value in wire_fields(buf):
        if number == 1:
            keys.append(value.decode())
        elif number == 2:
            fields_ = {n: v for n, _, v in wire_fields(value)}
            values.append(fields_.get(3, fields_.get(4, fields_.get(8))))
    if len(keys) != len(values):
        raise DecodeError("property set keys and values differ in number")
    return dict(zip(keys, values, strict=True))


def decode_metric(buf: bytes) -> Metric:
    metric = Metric()
    for number, _, value in wire_fields(buf):
        if number == 1:
            metric.name = value.decode("utf-8")
        elif number == 2:
            metric.alias = value
        elif number == 3:
            metric.timestamp = value
        elif number == 4:
            metric.datatype = value
        elif number == 5:
            metric.is_historical = bool(value)
        elif number == 7:
            metric.is_null = bool(value)
        elif number == 9:
            metric.properties = _properties(value)
        elif 10 <= number <= 16:
            metric.value_field, metric.raw_value = number, value
    return metric


def decode(buf: bytes) -> Payload:
    """Decode a whole payload (field order does not matter in protobuf, so neither does it here)."""
    payload = Payload()
    for number, wire, value in wire_fields(buf):
        if number == 1 and wire == 0:
            payload.timestamp = value
        elif number == 2 and wire == 2:
            payload.metrics.append(decode_metric(value))
        elif number == 3 and wire == 0:
            payload.seq = value
        elif number == 4 and wire == 2:
            payload.uuid = value.decode("utf-8")
    return payload


# -- a command encoder (what a host application sends), from the same definition ----------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _len_field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def encode_metric(
    alias: int | None = None,
    name: str | None = None,
    datatype: str | None = None,
    value: Any = None,
    value_datatype: str | None = None,
) -> bytes:
    """A metric for NCMD/DCMD; `value_datatype` picks the value field (default: `datatype`)."""
    out = b""
    if name is not None:
        out += _len_field(1, name.encode())
    if alias is not None:
        out += _varint(2 << 3) + _varint(alias)
    if datatype is not None:
        out += _varint(4 << 3) + _varint(DATATYPE_ID[datatype])
    kind = value_datatype or datatype
    if value is not None and kind is not None:
        number = VALUE_FIELD[kind]
        if number in (10, 11, 14):
            mask = (1 << 32) - 1 if number == 10 else (1 << 64) - 1
            out += _varint(number << 3) + _varint(int(value) & mask)
        elif number == 12:
            out += _varint(number << 3 | 5) + struct.pack("<f", value)
        elif number == 13:
            out += _varint(number << 3 | 1) + struct.pack("<d", value)
        else:
            out += _len_field(number, value.encode() if isinstance(value, str) else value)
    return out


def encode_payload(metrics: list[bytes], timestamp: int = 0, seq: int | None = None) -> bytes:
    out = _varint(1 << 3) + _varint(timestamp) if timestamp else b""
    out += b"".join(_len_field(2, m) for m in metrics)
    if seq is not None:
        out += _varint(3 << 3) + _varint(seq)
    return out
