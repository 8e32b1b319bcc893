"""Fuzz target: Modbus TCP responses — MBAP framing, response checks and register decoding.

Contract (drivers/modbus/pdu.py): a malformed response raises ProtocolError, an exception response
ModbusException; nothing else escapes, and a response that passes decodes into one value per map
entry with the column type the entry declares.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import cache

from fuzz.engine import Cursor, instrumented, run

with instrumented(__name__):
    from linebridge.drivers.base import Value, ValueType
    from linebridge.drivers.modbus import pdu
    from linebridge.drivers.modbus.codec import ByteOrder
    from linebridge.drivers.modbus.pdu import FunctionCode, MbapFramer, ModbusException, ProtocolError
    from linebridge.drivers.modbus.planner import Limits, ReadBlock, plan_polls
    from linebridge.drivers.modbus.poller import decode_block
    from linebridge.drivers.modbus.regmap import load_map, shipped_maps

INT64 = (-(2**63), 2**63 - 1)  # what an INT column (and the gRPC/Sparkplug int64) can carry
_PYTHON_TYPE = {ValueType.INT: int, ValueType.DOUBLE: float, ValueType.BOOL: bool, ValueType.STRING: str}
_READ = {
    "coil": FunctionCode.READ_COILS,
    "discrete_input": FunctionCode.READ_DISCRETE_INPUTS,
    "holding_register": FunctionCode.READ_HOLDING_REGISTERS,
    "input_register": FunctionCode.READ_INPUT_REGISTERS,
}


def every_type_map() -> dict[str, object]:
    """An inline map with every data type in every byte order, scaled and unscaled, and bit tables."""
    points: list[dict[str, object]] = []
    address = 0
    for order in ByteOrder:
        for data_type, size in (
            ("int16", 1),
            ("uint16", 1),
            ("int32", 2),
            ("uint32", 2),
            ("int64", 4),
            ("float32", 2),
            ("float64", 4),
            ("string", 3),
            ("bit", 1),
        ):
            extra: dict[str, object] = {"length": 3} if data_type == "string" else {}
            if data_type == "bit":
                extra = {"bit": address % 16}
            points.append(
                {
                    "path": f"{order}/{data_type}",
                    "table": "holding_register",
                    "address": address,
                    "type": data_type,
                    "byte_order": str(order),
                    **extra,
                }
            )
            address += size
            if data_type not in ("string", "bit"):
                # Whole scales keep integers in an INT column; fractional ones make doubles.
                for suffix, scale, offset in (("x10", 10, 5), ("x0.1", 0.1, -3.5)):
                    points.append(
                        {
                            "path": f"{order}/{data_type}/{suffix}",
                            "table": "input_register",
                            "address": address,
                            "type": data_type,
                            "byte_order": str(order),
                            "scale": scale,
                            "offset": offset,
                        }
                    )
                    address += size
    points += [{"path": f"coil/{i}", "table": "coil", "address": 3 * i, "type": "bool"} for i in range(12)]
    points += [{"path": f"di/{i}", "table": "discrete_input", "address": i, "type": "bool"} for i in range(9)]
    return {"points": points}


@cache
def blocks() -> tuple[ReadBlock, ...]:
    """Every read block the planner makes for the shipped maps and the every-type map."""
    maps = [load_map(name) for name in shipped_maps()] + [load_map(every_type_map())]
    found: list[ReadBlock] = []
    for regmap in maps:
        intervals = {name: regmap.group_interval(name) for name in regmap.poll_groups}
        plan = plan_polls(regmap.compiled, intervals, Limits(register_gap=4, bit_gap=16))
        found += [block for group in plan.groups for block in group.blocks]
    return tuple(found)


REQUESTS = (
    pdu.read_request(FunctionCode.READ_COILS, 0, 10),
    pdu.read_request(FunctionCode.READ_DISCRETE_INPUTS, 7, 1),
    pdu.read_request(FunctionCode.READ_HOLDING_REGISTERS, 5, 3),
    pdu.read_request(FunctionCode.READ_INPUT_REGISTERS, 0, 125),
    pdu.write_coil_request(1, True),
    pdu.write_register_request(2, b"\x00\x07"),
    pdu.write_coils_request(0, [True, False, True]),
    pdu.write_registers_request(0, b"\x00\x01\x00\x02"),
    pdu.mask_write_request(3, 0xFFFB, 4),
)


def check_framer(stream: bytes, step: int) -> tuple[list[pdu.Frame], bool]:
    """Feed `stream` in pieces of `step` bytes: (frames, refused); never a frame without a PDU."""
    framer = MbapFramer()
    frames: list[pdu.Frame] = []
    try:
        for start in range(0, len(stream), max(1, step)):
            frames += framer.feed(stream[start : start + max(1, step)])
    except ProtocolError:
        return frames, True
    assert all(1 <= len(f.pdu) <= pdu.MAX_PDU for f in frames), "frame PDU length outside 1..253"
    assert sum(7 + len(f.pdu) for f in frames) + framer.pending == len(stream), "bytes lost or invented"
    return frames, False


def check_response(request: bytes, response: bytes) -> bytes | None:
    """Data of a valid response, None for a clean refusal; AssertionError if the check lets junk pass."""
    try:
        data = pdu.check_response(request, response)
    except (ProtocolError, ModbusException):
        return None
    assert response[0] == request[0], "response to another function code accepted"
    if request[0] <= FunctionCode.READ_INPUT_REGISTERS:
        _, _, count = struct.unpack(">BHH", request)
        expected = (count + 7) // 8 if request[0] <= FunctionCode.READ_DISCRETE_INPUTS else 2 * count
        assert len(data) == expected, f"{len(data)} data bytes accepted, {expected} expected"
    else:
        assert data == b"", "a write response returned data"
    return data


def check_block(block: ReadBlock, payload: bytes) -> list[Value]:
    """Decode a well-formed response carrying `payload` (padded or cut to size) for a planned block."""
    request = pdu.read_request(_READ[str(block.table)], block.start, block.count)
    size = (block.count + 7) // 8 if block.table.is_bits else 2 * block.count
    data = payload[:size].ljust(size, b"\x00")
    raw = check_response(request, bytes([request[0], size]) + data)
    assert raw == data, "a well-formed response was refused"
    values = decode_block(block, raw)
    assert len(values) == len(block.points)
    for point, value in zip(block.points, values, strict=True):
        wanted = _PYTHON_TYPE[point.value_type]
        assert type(value) is wanted, (
            f"{point.label}: {type(value).__name__} in a {point.value_type.name} column"
        )
        if wanted is int:
            assert INT64[0] <= value <= INT64[1], f"{point.label}: {value} does not fit an int64 column"
    return values


def one_input(data: bytes) -> None:
    """libFuzzer entry: the first byte picks framer, response check or block decoding."""
    cursor = Cursor(data)
    mode = cursor.byte() % 3
    if mode == 0:
        step = cursor.byte()
        check_framer(cursor.rest(), step)
    elif mode == 1:
        check_response(cursor.choice(REQUESTS), cursor.rest())
    else:
        check_block(cursor.choice(blocks()), cursor.rest())


def seeds() -> Iterator[bytes]:
    """One valid input per mode to start from."""
    yield b"\x00\x03" + pdu.encode_frame(1, 1, b"\x03\x02\x00\x07") + pdu.encode_frame(2, 1, b"\x83\x02")
    for index, request in enumerate(REQUESTS):
        yield bytes([1, index]) + request
    for index in range(len(blocks())):
        yield bytes([2, index]) + bytes(range(256))


if __name__ == "__main__":
    run(one_input, seeds)
