"""OPC UA <-> Linebridge values: data type table, value and timestamp decoding, status -> quality."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asyncua import ua

from linebridge.drivers.base import InvalidArgument, Quality, Value, ValueType
from linebridge.drivers.opcua import hardening  # noqa: F401  (bounds asyncua's Variant array decoding)


@dataclass(frozen=True, slots=True)
class UaType:
    """A scalar OPC UA data type the driver can carry, and the column it travels in."""

    name: str  # recorded as Signal.source_type
    value_type: ValueType
    variant: ua.VariantType
    low: float | None = None
    high: float | None = None


_V = ua.VariantType
_FLOAT32_MAX = 3.4028234663852886e38

# Keyed by the numeric id of a namespace-0 DataType NodeId (OPC 10000-6 §5.1.2 built-in types, plus
# the abstract Enumeration whose values travel as Int32). UInt64, DateTime, ByteString, Guid,
# structures and arrays have no lossless column and are skipped.
UA_TYPES: dict[int, UaType] = {
    1: UaType("Boolean", ValueType.BOOL, _V.Boolean),
    2: UaType("SByte", ValueType.INT, _V.SByte, -(2**7), 2**7 - 1),
    3: UaType("Byte", ValueType.INT, _V.Byte, 0, 2**8 - 1),
    4: UaType("Int16", ValueType.INT, _V.Int16, -(2**15), 2**15 - 1),
    5: UaType("UInt16", ValueType.INT, _V.UInt16, 0, 2**16 - 1),
    6: UaType("Int32", ValueType.INT, _V.Int32, -(2**31), 2**31 - 1),
    7: UaType("UInt32", ValueType.INT, _V.UInt32, 0, 2**32 - 1),
    8: UaType("Int64", ValueType.INT, _V.Int64, -(2**63), 2**63 - 1),
    10: UaType("Float", ValueType.DOUBLE, _V.Float, -_FLOAT32_MAX, _FLOAT32_MAX),
    11: UaType("Double", ValueType.DOUBLE, _V.Double),
    12: UaType("String", ValueType.STRING, _V.String),
    21: UaType("LocalizedText", ValueType.STRING, _V.LocalizedText),
    29: UaType("Enumeration", ValueType.INT, _V.Int32, -(2**31), 2**31 - 1),
    290: UaType("Duration", ValueType.DOUBLE, _V.Double),
}
UA_TYPES_BY_NAME: dict[str, UaType] = {t.name: t for t in UA_TYPES.values()}
# Namespace-0 DataTypes 1..29 are the built-in types and the abstract roots (Structure, BaseDataType,
# Number, Enumeration, ...): a supertype walk for a derived DataType ends at one of them.
BUILTIN_MAX_ID = 29

ZERO: dict[ValueType, Value] = {
    ValueType.DOUBLE: 0.0,
    ValueType.INT: 0,
    ValueType.BOOL: False,
    ValueType.STRING: "",
}
PY_TYPE: dict[ValueType, type] = {
    ValueType.DOUBLE: float,
    ValueType.INT: int,
    ValueType.BOOL: bool,
    ValueType.STRING: str,
}

# OPC 10000-4 §7.39: the two top bits of a StatusCode are its severity (Good, Uncertain, Bad, Bad).
_SEVERITY_QUALITY = (Quality.GOOD, Quality.UNCERTAIN, Quality.BAD, Quality.BAD)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NS_MIN, _NS_MAX = -(2**63), 2**63 - 1


def quality_of(status: int) -> Quality:
    """The Linebridge quality of an OPC UA StatusCode value."""
    return _SEVERITY_QUALITY[(status >> 30) & 3]


def status_name(status: int) -> str:
    """Symbolic name of a StatusCode value, e.g. "BadOutOfRange"."""
    return ua.StatusCode(status).name


def stamp_of(data: ua.DataValue) -> tuple[int, bool]:
    """Source timestamp of a DataValue in ns since the epoch, and whether it is the device's own.

    Server timestamp, then now, are the fallbacks. OPC 10000-6 §5.2.2.5: a DateTime of 0 (decoded as
    1601-01-01) means "no time", and the largest one (9999-12-31) means "later than can be encoded":
    the first falls back like an absent stamp, the second is clamped into int64 ns (years 1677-2262).
    Either way the stamp is not the device's own, so the second element is False (mark and count it).
    """
    trusted = True
    for stamp in (data.SourceTimestamp, data.ServerTimestamp):
        if stamp is None:
            continue
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        if stamp.year <= 1601:
            trusted = False
            continue
        ns = (stamp - _EPOCH) // _MICROSECOND * 1000
        if _NS_MIN <= ns <= _NS_MAX:
            return ns, trusted
        return min(max(ns, _NS_MIN), _NS_MAX), False
    return time.time_ns(), trusted


def timestamp_ns(data: ua.DataValue) -> int:
    """Source timestamp of a DataValue in ns since the epoch, always within int64 (see stamp_of)."""
    return stamp_of(data)[0]


def sample_of(data: ua.DataValue, value_type: ValueType) -> tuple[Value, int, Quality, bool]:
    """(value, timestamp ns, quality, timestamp trusted) of one DataValue for a signal of `value_type`.

    A value that does not fit the column is BAD (and zero); a GOOD value whose timestamp had to be
    replaced or clamped is UNCERTAIN.
    """
    value, fits = decode(None if data.Value is None else data.Value.Value, value_type)
    status = 0 if data.StatusCode is None else data.StatusCode.value
    quality = quality_of(status) if fits else Quality.BAD
    if quality is Quality.BAD:
        value = ZERO[value_type]
    ns, trusted = stamp_of(data)
    if not trusted and quality is Quality.GOOD:
        quality = Quality.UNCERTAIN
    return value, ns, quality, trusted


def decode(raw: object, value_type: ValueType) -> tuple[Value, bool]:
    """Convert a decoded Variant value to the signal's column type; (zero, False) when it does not fit."""
    if type(raw) is PY_TYPE[value_type] and (value_type is not ValueType.INT or _NS_MIN <= raw <= _NS_MAX):
        return raw, True  # type: ignore[return-value]
    if value_type is ValueType.DOUBLE and isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw), True
    if value_type is ValueType.INT and isinstance(raw, int) and not isinstance(raw, bool):
        # IntEnum members of known enumerations; a UInt64 (or any integer) beyond int64 does not fit
        # the INT column (found by fuzz_opcua: it broke the Subscribe encoder).
        return (int(raw), True) if _NS_MIN <= raw <= _NS_MAX else (0, False)
    if value_type is ValueType.STRING:
        if isinstance(raw, ua.LocalizedText):
            return raw.Text or "", True
        if raw is None:
            return "", True  # a null String is a valid OPC UA value
    return ZERO[value_type], False


def encode(value: Value, ua_type: UaType) -> ua.Variant:
    """Convert a Linebridge value to a Variant of exactly `ua_type`; InvalidArgument when it cannot fit."""
    kind = ua_type.value_type
    if kind is ValueType.BOOL:
        if not isinstance(value, bool):
            raise InvalidArgument(f"{ua_type.name} needs a boolean, got {value!r}")
        return ua.Variant(value, ua_type.variant)
    if kind is ValueType.STRING:
        if not isinstance(value, str):
            raise InvalidArgument(f"{ua_type.name} needs a string, got {value!r}")
        text: object = ua.LocalizedText(value) if ua_type.variant is _V.LocalizedText else value
        return ua.Variant(text, ua_type.variant)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{ua_type.name} needs a number, got {value!r}")
    if kind is ValueType.INT:
        if isinstance(value, float) and not value.is_integer():
            raise InvalidArgument(f"{ua_type.name} needs an integer, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    if (
        ua_type.low is not None
        and ua_type.high is not None
        and math.isfinite(value)
        and not ua_type.low <= value <= ua_type.high
    ):
        raise InvalidArgument(f"{value!r} does not fit in {ua_type.name} [{ua_type.low:g}, {ua_type.high:g}]")
    return ua.Variant(value, ua_type.variant)


def plain(raw: object) -> Value | None:
    """A method output or property value as a plain Linebridge value, or None when it has no column."""
    if isinstance(raw, bool | int | float | str):
        return raw
    if isinstance(raw, ua.LocalizedText):
        return raw.Text or ""
    return None
