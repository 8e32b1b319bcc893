"""Base-128 varints, as protobuf writes lengths and MQTT writes its remaining length (§2.2.3)."""

from __future__ import annotations


def varint(value: int) -> bytes:
    """Unsigned LEB128 of an integer in [0, 2**64): protobuf's 10-byte maximum.

    A negative value is the caller's bug (signed protobuf fields are masked to 64 bits first), so it is
    refused rather than encoded as something the reader would misread.
    """
    if value < 0 or value >> 64:
        raise ValueError(f"a varint holds 0 to 2**64-1, got {value}")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
