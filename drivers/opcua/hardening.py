"""A bound on Variant arrays in asyncua's binary decoder, installed when the driver is imported.

Found by fuzz/fuzz_opcua.py: a Variant that declares an array of 2^31 Null elements (encoding byte
0x80, then a large Int32 length) makes asyncua's decoder loop for minutes, because a Null element takes
no bytes, and it does so inside the event loop: one hostile OPC UA server could freeze the bridge.
Every element of a Variant array takes at least one byte, except Null, and OPC 10000-6 §5.2.2.16 gives
no meaning to an array of Null values; so a declared length larger than the bytes left in the message
is refused here (asyncua's client closes that connection, as it does for any decode error).
"""

from __future__ import annotations

from typing import Any

from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua import ua_binary
from asyncua.ua.ua_binary import Primitives

_original = ua_binary.unpack_uatype_array


def checked_unpack_uatype_array(vtype: ua.VariantType, data: Any) -> list[Any] | None:
    """asyncua's array decoder, after checking that the declared length fits in the bytes left."""
    if isinstance(data, Buffer) and len(data) >= 4:
        length = Primitives.Int32.unpack(data.copy(4))
        if length > len(data) - 4 or (vtype is ua.VariantType.Null and length > 0):
            raise ua.UaError(f"Variant array of {length} {vtype.name} elements in {len(data) - 4} bytes")
    return _original(vtype, data)


def install() -> None:
    """Use the checked array decoder for Variants (idempotent)."""
    ua_binary.unpack_uatype_array = checked_unpack_uatype_array


install()
