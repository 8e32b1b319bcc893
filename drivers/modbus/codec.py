"""Modbus data types: register values <-> Python values, in any byte and word order.

Modbus itself only knows 16-bit registers sent big-endian (Modbus Application Protocol V1.1b3
§4.2) and single bits. Everything wider is a vendor convention, named here by the order in which
the bytes A (most significant) .. D of a 32-bit value appear on the wire:

* ABCD  big-endian, high word first (the Modbus default, e.g. Schneider, Siemens)
* CDAB  low word first, bytes in a word big-endian ("word swap", common on Modicon, WAGO)
* BADC  high word first, bytes in each word swapped ("byte swap")
* DCBA  fully little-endian

The same names generalise to 16- and 64-bit values: C-D-A-B reverses the register order, B-A-D-C
swaps the two bytes inside every register. Every order is then "maybe swap bytes inside each
register, then read big- or little-endian", which lets one struct call decode a value straight
out of a response buffer.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from linebridge.drivers.base import InvalidArgument, Value, ValueType


class DataType(StrEnum):
    """The value types a register map entry may declare."""

    BOOL = "bool"  # one coil or discrete input
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"  # `length` registers, two bytes each
    BIT = "bit"  # one bit (0..15) of a 16-bit register


class ByteOrder(StrEnum):
    """Order of a value's bytes on the wire, A being the most significant."""

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """How one data type travels: struct code, registers it fills, column type, raw range."""

    code: str
    registers: int  # 0: a bit table value; strings take their length instead
    value_type: ValueType
    low: float = 0
    high: float = 0


TYPES: dict[DataType, TypeInfo] = {
    DataType.BOOL: TypeInfo("", 0, ValueType.BOOL),
    DataType.INT16: TypeInfo("h", 1, ValueType.INT, -(2**15), 2**15 - 1),
    DataType.UINT16: TypeInfo("H", 1, ValueType.INT, 0, 2**16 - 1),
    DataType.INT32: TypeInfo("i", 2, ValueType.INT, -(2**31), 2**31 - 1),
    DataType.UINT32: TypeInfo("I", 2, ValueType.INT, 0, 2**32 - 1),
    DataType.INT64: TypeInfo("q", 4, ValueType.INT, -(2**63), 2**63 - 1),
    DataType.FLOAT32: TypeInfo("f", 2, ValueType.DOUBLE, -3.4028234663852886e38, 3.4028234663852886e38),
    DataType.FLOAT64: TypeInfo("d", 4, ValueType.DOUBLE, -math.inf, math.inf),
    DataType.STRING: TypeInfo("s", 0, ValueType.STRING),
    DataType.BIT: TypeInfo("H", 1, ValueType.BOOL),
}

# (swap bytes inside each register?, struct endianness) per order; see the module docstring.
_ORDER_LAYOUT: dict[ByteOrder, tuple[bool, str]] = {
    ByteOrder.ABCD: (False, ">"),
    ByteOrder.DCBA: (False, "<"),
    ByteOrder.BADC: (True, ">"),
    ByteOrder.CDAB: (True, "<"),
}


def swap_register_bytes(data: bytes) -> bytes:
    """Swap the two bytes of every 16-bit register in `data` (even length)."""
    out = bytearray(len(data))
    out[0::2] = data[1::2]
    out[1::2] = data[0::2]
    return bytes(out)


@dataclass(frozen=True, slots=True)
class RegisterCodec:
    """Decodes and encodes one register-table value from/to its wire bytes."""

    data_type: DataType
    order: ByteOrder
    registers: int
    swap: bool  # decode from the byte-swapped copy of the buffer
    packer: struct.Struct | None
    bit: int = 0

    @property
    def size(self) -> int:
        """Bytes the value fills on the wire."""
        return 2 * self.registers

    def decode(self, raw: bytes, swapped: bytes | None, offset: int) -> Value:
        """The value at byte `offset` of a response; `swapped` is swap_register_bytes(raw)."""
        buf = swapped if self.swap else raw
        assert buf is not None
        if self.packer is None:  # string: register order is character order
            text = buf[offset : offset + self.size].split(b"\x00", 1)[0]
            return text.decode("utf-8", errors="replace")
        value = self.packer.unpack_from(buf, offset)[0]
        if self.data_type is DataType.BIT:
            return bool((value >> self.bit) & 1)
        return value

    def decode_wire(self, wire: bytes) -> Value:
        """Decode a value from exactly its own wire bytes."""
        return self.decode(wire, swap_register_bytes(wire) if self.swap else None, 0)

    def encode(self, value: Value) -> bytes:
        """The wire bytes of a raw value (already range-checked by the caller)."""
        if self.packer is None:
            data = str(value).encode("utf-8")
            if len(data) > self.size:
                raise InvalidArgument(
                    f"string of {len(data)} bytes does not fit in {self.registers} registers"
                )
            data = data.ljust(self.size, b"\x00")
        elif self.data_type is DataType.BIT:
            raise InvalidArgument("a bit is written with a mask, not encoded as a register")
        else:
            data = self.packer.pack(value)
        return swap_register_bytes(data) if self.swap else data


def register_codec(
    data_type: DataType, order: ByteOrder = ByteOrder.ABCD, length: int = 0, bit: int = 0
) -> RegisterCodec:
    """The codec of a register-table data type; `length` counts registers (strings only)."""
    info = TYPES[data_type]
    if data_type is DataType.BOOL:
        raise InvalidArgument("bool lives in a coil or discrete input table, not in registers")
    swap, endian = _ORDER_LAYOUT[order]
    if data_type is DataType.STRING:
        if length <= 0:
            raise InvalidArgument("a string needs a length of at least 1 register")
        # Word order does not apply to strings (register order is character order); only the
        # byte swap inside a register does.
        return RegisterCodec(data_type, order, length, order in (ByteOrder.BADC, ByteOrder.DCBA), None)
    packer = struct.Struct(endian + info.code)
    return RegisterCodec(data_type, order, info.registers, swap, packer, bit)


def pack_bits(bits: Sequence[bool]) -> bytes:
    """Pack coil values LSB first, eight per byte (Modbus spec §6.11: FC15 outputs value)."""
    out = bytearray((len(bits) + 7) // 8)
    for index, bit in enumerate(bits):
        if bit:
            out[index >> 3] |= 1 << (index & 7)
    return bytes(out)


def unpack_bits(data: bytes, count: int) -> list[bool]:
    """Unpack `count` coil or input values packed LSB first (Modbus spec §6.1 response)."""
    return [bool((data[i >> 3] >> (i & 7)) & 1) for i in range(count)]


def bytes_to_registers(data: bytes) -> list[int]:
    """Split wire bytes into 16-bit register values (big-endian, §4.2)."""
    return list(struct.unpack(f">{len(data) // 2}H", data))


def registers_to_bytes(registers: Sequence[int]) -> bytes:
    """Join 16-bit register values into wire bytes (big-endian, §4.2)."""
    return struct.pack(f">{len(registers)}H", *registers)
