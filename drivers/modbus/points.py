"""Compiled register map points: where a signal lives, how its value converts and what may be written."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from linebridge.drivers.base import Access, InvalidArgument, Signal, Value, ValueType
from linebridge.drivers.modbus.codec import TYPES, DataType, RegisterCodec, TypeInfo


class Table(StrEnum):
    """The four Modbus data tables (Modbus Application Protocol V1.1b3 §4.3)."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    INPUT_REGISTER = "input_register"
    HOLDING_REGISTER = "holding_register"

    @property
    def is_bits(self) -> bool:
        """True for the single-bit tables (coils, discrete inputs)."""
        return self in (Table.COIL, Table.DISCRETE_INPUT)

    @property
    def writable(self) -> bool:
        """Only coils and holding registers can be written (§4.3: inputs are read-only)."""
        return self in (Table.COIL, Table.HOLDING_REGISTER)

    @property
    def short(self) -> str:
        """The abbreviation integrators know from PLC tools."""
        return _SHORT[self]


_SHORT = {
    Table.COIL: "coil",
    Table.DISCRETE_INPUT: "DI",
    Table.INPUT_REGISTER: "IR",
    Table.HOLDING_REGISTER: "HR",
}


def _decimals(number: float) -> int:
    exponent = Decimal(repr(float(number))).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _integral(number: float) -> bool:
    return math.isfinite(number) and float(number).is_integer()


def _fits_int64(info: TypeInfo, scale: int, offset: int) -> bool:
    """Whether every raw value times a whole scale, plus offset, fits an INT (int64) column."""
    ends = (int(info.low) * scale + offset, int(info.high) * scale + offset)
    return all(-(2**63) <= end < 2**63 for end in ends)


@dataclass(frozen=True, slots=True)
class MapPoint:
    """One validated register map entry, ready to decode, encode and range-check."""

    index: int  # position in the map, for error messages
    path: str
    table: Table
    address: int
    count: int  # registers (register tables) or bits (bit tables) the value covers
    data_type: DataType
    codec: RegisterCodec | None  # None in the bit tables
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    access: Access = Access.READ
    group: str = "default"
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""
    # Decimals of scale/offset: integer raw values scaled by 0.1 give 25.9, not 25.900000000000002.
    digits: int = field(default=15, init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digits", max(_decimals(self.scale), _decimals(self.offset)))

    @property
    def label(self) -> str:
        """How errors name this entry: index and path."""
        return f"entry {self.index} ({self.path})"

    @property
    def scaled(self) -> bool:
        """Whether engineering value differs from the raw value."""
        return self.scale != 1 or self.offset != 0

    @property
    def value_type(self) -> ValueType:
        """Column type of the engineering value: scaled integers stay INT only if whole and within int64."""
        info = TYPES[self.data_type]
        if info.value_type is ValueType.INT and not (
            _integral(self.scale)
            and _integral(self.offset)
            and _fits_int64(info, int(self.scale), int(self.offset))
        ):
            return ValueType.DOUBLE
        return info.value_type

    @property
    def end(self) -> int:
        """One past the last address this point covers."""
        return self.address + self.count

    def engineering(self, raw: Value) -> Value:
        """raw * scale + offset, keeping integers integral when the scale is whole."""
        if not self.scaled or isinstance(raw, bool | str):
            return raw
        if self.value_type is ValueType.INT:
            return int(raw) * int(self.scale) + int(self.offset)
        if isinstance(raw, int):
            return round(raw * self.scale + self.offset, self.digits)
        return raw * self.scale + self.offset

    def raw_for(self, value: Value) -> Value:
        """The raw value to send for an engineering value; InvalidArgument when out of range."""
        if self.data_type in (DataType.BOOL, DataType.BIT):
            if not isinstance(value, bool):
                raise InvalidArgument(f"{self.path}: expected a boolean, got {value!r}")
            return value
        if self.data_type is DataType.STRING:
            return self._string_raw(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgument(f"{self.path}: expected a number, got {value!r}")
        self._check_limits(value)
        raw = (value - self.offset) / self.scale if self.scaled else value
        info = TYPES[self.data_type]
        if info.value_type is ValueType.INT:
            raw = self._integer_raw(value, raw)
        if math.isfinite(raw) and not info.low <= raw <= info.high:
            raise InvalidArgument(f"{self.path}: {value} does not fit {self.data_type} (raw {raw})")
        return raw

    def _string_raw(self, value: Value) -> str:
        if not isinstance(value, str):
            raise InvalidArgument(f"{self.path}: expected a string, got {value!r}")
        if len(value.encode("utf-8")) > 2 * self.count:
            raise InvalidArgument(f"{self.path}: {value!r} is longer than {2 * self.count} bytes")
        return value

    def _check_limits(self, value: float) -> None:
        if math.isnan(value) and (self.minimum is not None or self.maximum is not None):
            raise InvalidArgument(f"{self.path}: NaN is outside the allowed range")
        if self.minimum is not None and value < self.minimum:
            raise InvalidArgument(
                f"{self.path}: {value} is below the minimum {self.minimum} {self.unit}".rstrip()
            )
        if self.maximum is not None and value > self.maximum:
            raise InvalidArgument(
                f"{self.path}: {value} is above the maximum {self.maximum} {self.unit}".rstrip()
            )

    def _integer_raw(self, value: float, raw: float) -> int:
        if not math.isfinite(raw):
            raise InvalidArgument(f"{self.path}: {value} is not a finite number")
        if self.value_type is ValueType.INT and not float(raw).is_integer():
            raise InvalidArgument(f"{self.path}: {value} is not a multiple of the scale {self.scale}")
        # Doubles are rounded to the nearest raw step (scale 0.1: 1.23 -> 12).
        return int(raw) if float(raw).is_integer() else round(raw)

    def signal(self) -> Signal:
        """The catalog signal; the driver polls and compares, so change detection says so."""
        return Signal(
            path=self.path,
            value_type=self.value_type,
            unit=self.unit,
            access=self.access,
            description=self.description,
            source_type=self.data_type.value,
            address=f"{self.table.short} {self.address}",
            change_detection="polled-compare",
            minimum=self.minimum,
            maximum=self.maximum,
        )
