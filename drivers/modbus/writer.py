"""Writes: range checks, merging adjacent values into one request, the right function code, read-back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from linebridge.drivers.base import DeviceError, InvalidArgument, Value
from linebridge.drivers.modbus.client import UnitClient
from linebridge.drivers.modbus.codec import DataType, unpack_bits
from linebridge.drivers.modbus.pdu import WRITE_MAX_COILS, WRITE_MAX_REGISTERS, ModbusException
from linebridge.drivers.modbus.points import MapPoint, Table

_ILLEGAL_FUNCTION = 1


@dataclass(slots=True)
class _Run:
    """Consecutive addresses written with one request."""

    kind: str  # "coils", "registers" or "bits"
    address: int
    paths: list[str] = field(default_factory=list)
    coils: list[bool] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    and_mask: int = 0xFFFF
    or_mask: int = 0

    @property
    def end(self) -> int:
        """One past the last address written."""
        return self.address + (len(self.coils) if self.kind == "coils" else max(1, len(self.data) // 2))


def plan_writes(items: Sequence[tuple[MapPoint, Value]]) -> list[_Run]:
    """Check every value first, then merge neighbours listed one after another, keeping the order."""
    runs: list[_Run] = []
    seen: set[tuple[Table, int, int]] = set()
    for point, value in items:
        if not point.access.writable:
            raise InvalidArgument(f"{point.path} is read-only")
        raw = point.raw_for(value)
        bit = point.codec.bit if point.codec is not None else 0
        key = (point.table, point.address, bit)
        if key in seen:
            raise InvalidArgument(f"{point.path} is written twice in one command")
        seen.add(key)
        _add(runs, point, raw)
    return runs


def _add(runs: list[_Run], point: MapPoint, raw: Value) -> None:
    last = runs[-1] if runs else None
    if point.table is Table.COIL:
        if (
            last is None
            or last.kind != "coils"
            or last.end != point.address
            or len(last.coils) >= WRITE_MAX_COILS
        ):
            last = _Run("coils", point.address)
            runs.append(last)
        last.coils.append(bool(raw))
    elif point.data_type is DataType.BIT:
        assert point.codec is not None
        if last is None or last.kind != "bits" or last.address != point.address:
            last = _Run("bits", point.address)
            runs.append(last)
        mask = 1 << point.codec.bit
        last.and_mask &= ~mask & 0xFFFF
        last.or_mask = (last.or_mask | mask) if raw else (last.or_mask & ~mask)
    else:
        assert point.codec is not None
        data = point.codec.encode(raw)
        if (
            last is None
            or last.kind != "registers"
            or last.end != point.address
            or (len(last.data) + len(data)) // 2 > WRITE_MAX_REGISTERS
        ):
            last = _Run("registers", point.address)
            runs.append(last)
        last.data += data
    last.paths.append(point.path)


async def execute_writes(client: UnitClient, runs: list[_Run], timeout: float, verify: bool) -> None:
    """Send the runs in order; with `verify`, read each one back and compare."""
    for run in runs:
        if run.kind == "coils":
            await client.write_coils(run.address, run.coils, timeout)
        elif run.kind == "registers":
            await client.write_registers(run.address, bytes(run.data), timeout)
        else:
            await _write_bits(client, run, timeout)
    if verify:
        for run in runs:
            await _verify(client, run, timeout)


async def _write_bits(client: UnitClient, run: _Run, timeout: float) -> None:
    """FC22 mask write; devices without FC22 get a read-modify-write (FC3 + FC6)."""
    try:
        await client.mask_write(run.address, run.and_mask, run.or_mask, timeout)
        return
    except ModbusException as exc:
        if exc.code != _ILLEGAL_FUNCTION:
            raise
    current = int.from_bytes(await client.read(Table.HOLDING_REGISTER, run.address, 1, timeout), "big")
    value = (current & run.and_mask) | (run.or_mask & ~run.and_mask & 0xFFFF)
    await client.write_registers(run.address, value.to_bytes(2, "big"), timeout)


async def _verify(client: UnitClient, run: _Run, timeout: float) -> None:
    if run.kind == "coils":
        raw = await client.read(Table.COIL, run.address, len(run.coils), timeout)
        held: object = unpack_bits(raw, len(run.coils))
        ok = held == run.coils
    elif run.kind == "registers":
        held = await client.read(Table.HOLDING_REGISTER, run.address, len(run.data) // 2, timeout)
        ok = held == bytes(run.data)
    else:
        register = int.from_bytes(await client.read(Table.HOLDING_REGISTER, run.address, 1, timeout), "big")
        held = f"{register:#06x}"
        ok = register & ~run.and_mask & 0xFFFF == run.or_mask & ~run.and_mask & 0xFFFF
    if not ok:
        raise DeviceError(
            f"read-back of {', '.join(run.paths)} does not match what was written "
            f"(device holds {_show(held)})"
        )


def _show(held: object) -> str:
    return held.hex() if isinstance(held, bytes) else str(held)
