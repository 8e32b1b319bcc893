"""Typed Modbus requests to one unit id over a (shared) connection."""

from __future__ import annotations

from linebridge.drivers.base import Unavailable
from linebridge.drivers.modbus import pdu
from linebridge.drivers.modbus.pdu import FunctionCode, ProtocolError
from linebridge.drivers.modbus.points import Table
from linebridge.drivers.modbus.transport import ModbusConnection

READ_FUNCTION = {
    Table.COIL: FunctionCode.READ_COILS,
    Table.DISCRETE_INPUT: FunctionCode.READ_DISCRETE_INPUTS,
    Table.HOLDING_REGISTER: FunctionCode.READ_HOLDING_REGISTERS,
    Table.INPUT_REGISTER: FunctionCode.READ_INPUT_REGISTERS,
}


class UnitClient:
    """Reads and writes of one unit; protocol errors close the connection, exceptions raise ModbusException."""

    def __init__(self, connection: ModbusConnection, unit: int) -> None:
        self.connection = connection
        self.unit = unit

    async def read(self, table: Table, start: int, count: int, timeout: float) -> bytes:
        """Raw data of a read: register wire bytes, or bits packed LSB first."""
        request = pdu.read_request(READ_FUNCTION[table], start, count)
        return await self._call(request, timeout, f"read {table.short} {start}-{start + count - 1}")

    async def write_coils(self, address: int, values: list[bool], timeout: float) -> None:
        """FC5 for one coil, FC15 for several consecutive ones."""
        if len(values) == 1:
            request = pdu.write_coil_request(address, values[0])
        else:
            request = pdu.write_coils_request(address, values)
        await self._call(request, timeout, f"write coil {address}")

    async def write_registers(self, address: int, data: bytes, timeout: float) -> None:
        """FC6 for one register, FC16 for several consecutive ones."""
        if len(data) == 2:
            request = pdu.write_register_request(address, data)
        else:
            request = pdu.write_registers_request(address, data)
        await self._call(request, timeout, f"write HR {address}")

    async def mask_write(self, address: int, and_mask: int, or_mask: int, timeout: float) -> None:
        """FC22 mask write of one holding register."""
        request = pdu.mask_write_request(address, and_mask, or_mask)
        await self._call(request, timeout, f"mask write HR {address}")

    async def _call(self, request: bytes, timeout: float, what: str) -> bytes:
        response = await self.connection.request(self.unit, request, timeout)
        try:
            return pdu.check_response(request, response, f"unit {self.unit} {what}")
        except ProtocolError as exc:
            reason = f"malformed response from unit {self.unit} at {self.connection.address} to {what}: {exc}"
            self.connection.fail(reason)
            raise Unavailable(reason) from None
