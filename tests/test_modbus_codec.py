"""Modbus data types and byte/word orders: known byte vectors, round trips, scaling, write checks."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client import AsyncModbusTcpClient

from linebridge.drivers.base import Access, InvalidArgument, ValueType
from linebridge.drivers.modbus.codec import (
    ByteOrder,
    DataType,
    bytes_to_registers,
    pack_bits,
    register_codec,
    registers_to_bytes,
    swap_register_bytes,
    unpack_bits,
)
from linebridge.drivers.modbus.points import MapPoint, Table

# (type, value, {order: wire bytes}) from the byte names: A is the most significant byte.
VECTORS = [
    (DataType.INT16, 0x0102, {"ABCD": "0102", "CDAB": "0102", "BADC": "0201", "DCBA": "0201"}),
    (DataType.UINT16, 0xFE01, {"ABCD": "fe01", "CDAB": "fe01", "BADC": "01fe", "DCBA": "01fe"}),
    (DataType.INT16, -2, {"ABCD": "fffe", "CDAB": "fffe", "BADC": "feff", "DCBA": "feff"}),
    (
        DataType.INT32,
        0x01020304,
        {"ABCD": "01020304", "CDAB": "03040102", "BADC": "02010403", "DCBA": "04030201"},
    ),
    (
        DataType.UINT32,
        0xA1B2C3D4,
        {"ABCD": "a1b2c3d4", "CDAB": "c3d4a1b2", "BADC": "b2a1d4c3", "DCBA": "d4c3b2a1"},
    ),
    (DataType.INT32, -1, {o: "ffffffff" for o in ("ABCD", "CDAB", "BADC", "DCBA")}),
    (DataType.FLOAT32, 1.0, {"ABCD": "3f800000", "CDAB": "00003f80", "BADC": "803f0000", "DCBA": "0000803f"}),
    (
        DataType.FLOAT32,
        -2.5,
        {"ABCD": "c0200000", "CDAB": "0000c020", "BADC": "20c00000", "DCBA": "000020c0"},
    ),
    (
        DataType.INT64,
        0x0102030405060708,
        {
            "ABCD": "0102030405060708",
            "CDAB": "0708050603040102",
            "BADC": "0201040306050807",
            "DCBA": "0807060504030201",
        },
    ),
    (
        DataType.FLOAT64,
        1.0,
        {
            "ABCD": "3ff0000000000000",
            "CDAB": "00000000 0000 3ff0",
            "BADC": "f03f000000000000",
            "DCBA": "000000000000f03f",
        },
    ),
]


@pytest.mark.parametrize(("data_type", "value", "wires"), VECTORS)
@pytest.mark.parametrize("order", list(ByteOrder))
def test_known_byte_vectors(
    data_type: DataType, value: float, wires: dict[str, str], order: ByteOrder
) -> None:
    codec = register_codec(data_type, order)
    wire = bytes.fromhex(wires[order.value].replace(" ", ""))
    assert codec.encode(value) == wire
    assert codec.decode_wire(wire) == value


FLOAT32S = st.floats(width=32, allow_nan=False)
VALUES = {
    DataType.INT16: st.integers(-(2**15), 2**15 - 1),
    DataType.UINT16: st.integers(0, 2**16 - 1),
    DataType.INT32: st.integers(-(2**31), 2**31 - 1),
    DataType.UINT32: st.integers(0, 2**32 - 1),
    DataType.INT64: st.integers(-(2**63), 2**63 - 1),
    DataType.FLOAT32: FLOAT32S,
    DataType.FLOAT64: st.floats(allow_nan=False),
}


@pytest.mark.parametrize("data_type", list(VALUES))
@pytest.mark.parametrize("order", list(ByteOrder))
@given(data=st.data())
def test_round_trip_every_type_and_order(data_type: DataType, order: ByteOrder, data: st.DataObject) -> None:
    value = data.draw(VALUES[data_type])
    codec = register_codec(data_type, order)
    wire = codec.encode(value)
    assert len(wire) == 2 * codec.registers
    assert codec.decode_wire(wire) == value


@pytest.mark.parametrize("order", list(ByteOrder))
def test_nan_round_trips_bit_exact(order: ByteOrder) -> None:
    codec = register_codec(DataType.FLOAT32, order)
    assert math.isnan(codec.decode_wire(codec.encode(math.nan)))


PYMODBUS_TYPES = {
    DataType.INT32: AsyncModbusTcpClient.DATATYPE.INT32,
    DataType.UINT32: AsyncModbusTcpClient.DATATYPE.UINT32,
    DataType.INT64: AsyncModbusTcpClient.DATATYPE.INT64,
    DataType.FLOAT32: AsyncModbusTcpClient.DATATYPE.FLOAT32,
    DataType.FLOAT64: AsyncModbusTcpClient.DATATYPE.FLOAT64,
    DataType.INT16: AsyncModbusTcpClient.DATATYPE.INT16,
}


@pytest.mark.parametrize("data_type", list(PYMODBUS_TYPES))
@pytest.mark.parametrize(("order", "word_order"), [(ByteOrder.ABCD, "big"), (ByteOrder.CDAB, "little")])
@given(data=st.data())
def test_agrees_with_pymodbus_converters(
    data_type: DataType, order: ByteOrder, word_order: str, data: st.DataObject
) -> None:
    """pymodbus's word_order="little" is CDAB: an independent oracle for two of the orders."""
    value = data.draw(VALUES[data_type])
    registers = AsyncModbusTcpClient.convert_to_registers(
        value, PYMODBUS_TYPES[data_type], word_order=word_order
    )
    codec = register_codec(data_type, order)
    assert bytes_to_registers(codec.encode(value)) == registers
    assert codec.decode_wire(registers_to_bytes(registers)) == value


def test_decode_at_offsets_inside_one_response() -> None:
    values = [
        (DataType.UINT16, ByteOrder.BADC, 0xBEEF),
        (DataType.FLOAT32, ByteOrder.CDAB, 3.5),
        (DataType.INT64, ByteOrder.DCBA, -123456789012),
        (DataType.INT32, ByteOrder.ABCD, -7),
    ]
    codecs = [register_codec(t, o) for t, o, _ in values]
    raw = b"".join(c.encode(v) for c, (_, _, v) in zip(codecs, values, strict=True))
    swapped = swap_register_bytes(raw)
    offset = 0
    for codec, (_, _, value) in zip(codecs, values, strict=True):
        assert codec.decode(raw, swapped, offset) == value
        offset += codec.size


def test_string_encoding_padding_and_byte_swap() -> None:
    plain = register_codec(DataType.STRING, ByteOrder.ABCD, length=3)
    assert plain.encode("ABC") == b"ABC\x00\x00\x00"
    assert plain.decode_wire(b"ABC\x00\x00\x00") == "ABC"
    assert plain.decode_wire(b"ABCDEF") == "ABCDEF"
    swapped = register_codec(DataType.STRING, ByteOrder.BADC, length=2)
    assert swapped.encode("ABC") == b"BA\x00C"
    assert swapped.decode_wire(b"BA\x00C") == "ABC"
    # Word order never reorders characters: CDAB reads like ABCD, DCBA like BADC.
    assert register_codec(DataType.STRING, ByteOrder.CDAB, length=2).encode("ABCD") == b"ABCD"
    assert register_codec(DataType.STRING, ByteOrder.DCBA, length=2).encode("ABCD") == b"BADC"
    with pytest.raises(InvalidArgument, match="does not fit"):
        plain.encode("ABCDEFG")


def test_string_needs_a_length() -> None:
    with pytest.raises(InvalidArgument, match="length"):
        register_codec(DataType.STRING, ByteOrder.ABCD, length=0)


@pytest.mark.parametrize("bit", range(16))
def test_bit_in_register(bit: int) -> None:
    codec = register_codec(DataType.BIT, ByteOrder.ABCD, bit=bit)
    assert codec.decode_wire((1 << bit).to_bytes(2, "big")) is True
    assert codec.decode_wire((0xFFFF ^ (1 << bit)).to_bytes(2, "big")) is False
    swapped = register_codec(DataType.BIT, ByteOrder.BADC, bit=bit)
    assert swapped.decode_wire((1 << bit).to_bytes(2, "little")) is True
    with pytest.raises(InvalidArgument):
        codec.encode(True)


def test_bool_is_not_a_register_type() -> None:
    with pytest.raises(InvalidArgument):
        register_codec(DataType.BOOL)


def test_coil_bits_match_the_spec_example() -> None:
    # Modbus spec §6.1 example: coils 20..27 = 1,0,1,1,0,0,1,1 -> first status byte 0xCD, LSB first.
    bits = [True, False, True, True, False, False, True, True, True, False]
    assert pack_bits(bits) == bytes([0xCD, 0x01])
    assert unpack_bits(bytes([0xCD, 0x01]), 10) == bits


@given(st.lists(st.booleans(), min_size=1, max_size=2000))
def test_bits_round_trip(bits: list[bool]) -> None:
    assert unpack_bits(pack_bits(bits), len(bits)) == bits


def point(
    data_type: DataType,
    scale: float = 1.0,
    offset: float = 0.0,
    minimum: float | None = None,
    maximum: float | None = None,
    length: int = 0,
) -> MapPoint:
    codec = register_codec(data_type, ByteOrder.ABCD, length=length)
    return MapPoint(
        0,
        "p",
        Table.HOLDING_REGISTER,
        0,
        codec.registers,
        data_type,
        codec,
        scale,
        offset,
        "u",
        Access.READ_WRITE,
        "default",
        minimum,
        maximum,
    )


def test_scaled_integer_becomes_double_and_rounds_cleanly() -> None:
    temperature = point(DataType.INT16, scale=0.1)
    assert temperature.value_type is ValueType.DOUBLE
    assert temperature.engineering(259) == 25.9
    assert temperature.raw_for(25.9) == 259
    assert temperature.raw_for(1.23) == 12  # nearest raw step
    offset = point(DataType.UINT16, scale=0.5, offset=-40)
    assert offset.engineering(100) == 10.0
    assert offset.raw_for(10.0) == 100


def test_whole_scale_keeps_integers() -> None:
    counts = point(DataType.UINT16, scale=10, offset=5)
    assert counts.value_type is ValueType.INT
    assert counts.engineering(3) == 35
    assert counts.raw_for(35) == 3
    with pytest.raises(InvalidArgument, match="multiple"):
        counts.raw_for(36)


@pytest.mark.parametrize(
    ("data_type", "value"),
    [
        (DataType.INT16, 40000),
        (DataType.INT16, -40000),
        (DataType.UINT16, -1),
        (DataType.UINT16, 70000),
        (DataType.UINT32, 2**32),
        (DataType.INT32, 2**31),
        (DataType.FLOAT32, 1e39),
    ],
)
def test_values_that_do_not_fit_the_type(data_type: DataType, value: float) -> None:
    with pytest.raises(InvalidArgument, match="does not fit"):
        point(data_type).raw_for(value)


def test_min_max_and_type_checks() -> None:
    speed = point(DataType.FLOAT32, minimum=0.0, maximum=2.0)
    assert speed.raw_for(2.0) == 2.0
    with pytest.raises(InvalidArgument, match="above the maximum 2.0 u"):
        speed.raw_for(2.5)
    with pytest.raises(InvalidArgument, match="below the minimum"):
        speed.raw_for(-0.1)
    with pytest.raises(InvalidArgument, match="NaN"):
        speed.raw_for(math.nan)
    with pytest.raises(InvalidArgument, match="number"):
        speed.raw_for("fast")
    with pytest.raises(InvalidArgument, match="number"):
        speed.raw_for(True)
    with pytest.raises(InvalidArgument, match="longer"):
        point(DataType.STRING, length=2).raw_for("12345")
    with pytest.raises(InvalidArgument, match="boolean"):
        point(DataType.BIT).raw_for(1)


def test_float32_infinity_is_allowed_without_limits() -> None:
    assert (
        struct.unpack(">f", point(DataType.FLOAT32).codec.encode(point(DataType.FLOAT32).raw_for(math.inf)))[
            0
        ]
        == math.inf
    )
