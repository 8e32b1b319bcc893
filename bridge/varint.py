"""Base-128 varints, as protobuf writes lengths and MQTT writes its remaining length (§2.2.3)."""

from __future__ import annotations


def varint(value: int) -> bytes:
    """Unsigned LEB128 of a non-negative integer."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
