"""Modbus TCP framing (MBAP header) and the PDUs the driver sends, with strict response checks.

References: Modbus Application Protocol Specification V1.1b3 (PDUs, exception codes) and the
Modbus Messaging on TCP/IP Implementation Guide V1.0b §3.1.3 (MBAP header). Anything a response
gets wrong raises ProtocolError, after which the connection cannot be trusted and is closed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from linebridge.drivers.base import DeviceError
from linebridge.drivers.modbus.codec import pack_bits

MBAP = struct.Struct(">HHHB")  # transaction id, protocol id (0), length (unit + PDU), unit id
MAX_PDU = 253  # §4.1: 256-byte RS485 ADU minus address and CRC


class FunctionCode(IntEnum):
    """The public function codes the driver uses."""

    READ_COILS = 1
    READ_DISCRETE_INPUTS = 2
    READ_HOLDING_REGISTERS = 3
    READ_INPUT_REGISTERS = 4
    WRITE_SINGLE_COIL = 5
    WRITE_SINGLE_REGISTER = 6
    WRITE_MULTIPLE_COILS = 15
    WRITE_MULTIPLE_REGISTERS = 16
    MASK_WRITE_REGISTER = 22


# §7: exception codes and what an integrator should read.
EXCEPTION_TEXT = {
    1: "illegal function (the device does not support this request)",
    2: "illegal data address (the address is not mapped on the device)",
    3: "illegal data value (the device rejected the value or quantity)",
    4: "server device failure",
    5: "acknowledge (a long operation is still running)",
    6: "server device busy (try again later)",
    8: "memory parity error",
    10: "gateway path unavailable (the gateway has no route to this unit)",
    11: "gateway target device failed to respond",
}
GATEWAY_CODES = frozenset({10, 11})
WRITE_MAX_COILS = 1968  # §6.11
WRITE_MAX_REGISTERS = 123  # §6.12


class ProtocolError(Exception):
    """A response that breaks the protocol; the connection must be closed."""


class ModbusException(DeviceError):
    """The device answered with a Modbus exception response (§7)."""

    def __init__(self, code: int, context: str = "") -> None:
        self.code = code
        text = EXCEPTION_TEXT.get(code, "unknown exception code")
        super().__init__(f"{context + ': ' if context else ''}{text} (Modbus exception {code})")

    @property
    def from_gateway(self) -> bool:
        """A gateway says the unit behind it is unreachable: the device is offline."""
        return self.code in GATEWAY_CODES


def encode_frame(transaction: int, unit: int, pdu: bytes) -> bytes:
    """An ADU: MBAP header followed by the PDU."""
    return MBAP.pack(transaction, 0, len(pdu) + 1, unit) + pdu


@dataclass(frozen=True, slots=True)
class Frame:
    """One received ADU."""

    transaction: int
    unit: int
    pdu: bytes


class MbapFramer:
    """Splits a TCP byte stream into ADUs; raises ProtocolError on an impossible header."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return every complete frame."""
        self._buffer += data
        frames = []
        while len(self._buffer) >= MBAP.size:
            transaction, protocol, length, unit = MBAP.unpack_from(self._buffer)
            if protocol != 0:
                raise ProtocolError(f"protocol id {protocol} is not Modbus (0)")
            if not 2 <= length <= MAX_PDU + 1:
                raise ProtocolError(f"MBAP length {length} is outside 2..{MAX_PDU + 1}")
            total = MBAP.size - 1 + length
            if len(self._buffer) < total:
                break
            frames.append(Frame(transaction, unit, bytes(self._buffer[MBAP.size : total])))
            del self._buffer[:total]
        return frames


def read_request(function: FunctionCode, address: int, count: int) -> bytes:
    """FC1-4: read `count` bits or registers from `address` (§6.1-6.4)."""
    return struct.pack(">BHH", function, address, count)


def write_coil_request(address: int, value: bool) -> bytes:
    """FC5: 0xFF00 switches a coil on, 0x0000 off (§6.5)."""
    return struct.pack(">BHH", FunctionCode.WRITE_SINGLE_COIL, address, 0xFF00 if value else 0)


def write_register_request(address: int, data: bytes) -> bytes:
    """FC6: one register, `data` its two wire bytes (§6.6)."""
    return struct.pack(">BH", FunctionCode.WRITE_SINGLE_REGISTER, address) + data


def write_coils_request(address: int, values: list[bool]) -> bytes:
    """FC15: several consecutive coils (§6.11)."""
    packed = pack_bits(values)
    return struct.pack(">BHHB", FunctionCode.WRITE_MULTIPLE_COILS, address, len(values), len(packed)) + packed


def write_registers_request(address: int, data: bytes) -> bytes:
    """FC16: consecutive registers from their wire bytes (§6.12)."""
    return (
        struct.pack(">BHHB", FunctionCode.WRITE_MULTIPLE_REGISTERS, address, len(data) // 2, len(data)) + data
    )


def mask_write_request(address: int, and_mask: int, or_mask: int) -> bytes:
    """FC22: register = (register AND and_mask) OR (or_mask AND NOT and_mask) (§6.16)."""
    return struct.pack(">BHHH", FunctionCode.MASK_WRITE_REGISTER, address, and_mask, or_mask)


def _expected_read_bytes(request: bytes) -> int:
    function, _, count = struct.unpack(">BHH", request)
    if function in (FunctionCode.READ_COILS, FunctionCode.READ_DISCRETE_INPUTS):
        return (count + 7) // 8
    return 2 * count


def check_response(request: bytes, response: bytes, context: str = "") -> bytes:
    """Validate a response against its request; return the read data (empty for writes).

    Raises ModbusException for an exception response and ProtocolError for anything malformed.
    """
    if not response:
        raise ProtocolError("empty PDU")
    function = request[0]
    if response[0] == function | 0x80:
        if len(response) != 2:
            raise ProtocolError(f"exception response of {len(response)} bytes, expected 2")
        raise ModbusException(response[1], context)
    if response[0] != function:
        raise ProtocolError(f"function code {response[0]} in the response to function code {function}")
    if function <= FunctionCode.READ_INPUT_REGISTERS:
        expected = _expected_read_bytes(request)
        if len(response) < 2 or response[1] != expected or len(response) != 2 + expected:
            got = response[1] if len(response) > 1 else None
            raise ProtocolError(f"byte count {got} with {len(response) - 2} data bytes, expected {expected}")
        return response[2:]
    # Write responses echo the request: FC5/6/22 entirely, FC15/16 address and quantity (§6.5-6.16).
    echo = (
        request[:5]
        if function in (FunctionCode.WRITE_MULTIPLE_COILS, FunctionCode.WRITE_MULTIPLE_REGISTERS)
        else request
    )
    if response != echo:
        raise ProtocolError(f"write response {response.hex()} does not echo the request {echo.hex()}")
    return b""
