"""Register maps: the YAML/inline model, its validation at start, and loading shipped maps by name.

Entry fields stay loosely typed (plain strings) on purpose: the map validator checks them itself so
that every error names the entry by index *and* path ("entry 3 (conveyor/speed): ..."), which a
bare pydantic enum error cannot do.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from linebridge.drivers.base import Access, DeviceKind, relative_to_config
from linebridge.drivers.modbus.codec import TYPES, ByteOrder, DataType, register_codec
from linebridge.drivers.modbus.points import MapPoint, Table

MAPS_DIR = Path(__file__).with_name("maps")
MAX_ADDRESS = 65535
# A string must fit one read request (§6.3: at most 125 registers).
MAX_STRING_REGISTERS = 125
_MAP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ACCESS = {"read": Access.READ, "read_write": Access.READ_WRITE}


class DeviceInfo(BaseModel):
    """What the map says about the device kind: used in the device description."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = "plc"
    vendor: str = ""
    model: str = ""
    description: str = ""

    @model_validator(mode="after")
    def _known_kind(self) -> DeviceInfo:
        if self.kind.upper() not in DeviceKind.__members__:
            kinds = ", ".join(k.lower() for k in DeviceKind.__members__)
            raise ValueError(f"device kind {self.kind!r} is unknown (expected one of {kinds})")
        return self

    @property
    def device_kind(self) -> DeviceKind:
        """The kind as the model enum."""
        return DeviceKind[self.kind.upper()]


class AlarmSpec(BaseModel):
    """`alarm:` on a map point: the point is a device alarm bit (active while true, or equal to `value`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: int = Field(500, ge=1, le=1000)
    message: str = ""
    value: float | bool = True


class PointSpec(BaseModel):
    """One register map entry as written in YAML or in the config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    table: str
    address: int
    type: str
    length: int | None = None  # registers, strings only
    bit: int | None = None  # 0..15, type bit only
    byte_order: str | None = None  # default: the map's byte_order
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    access: str = "read"
    poll: str = "default"
    min: float | None = None
    max: float | None = None
    description: str = ""
    # A device alarm bit (issue 14): raised while the point is true (or equals alarm.value).
    alarm: AlarmSpec | None = None

    @field_validator("table", "type", "access", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class RegisterMap(BaseModel):
    """A device's register map: entries, poll groups (name -> interval in ms), device info."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: DeviceInfo = DeviceInfo()
    byte_order: str = "ABCD"
    poll_groups: dict[str, int] = Field(default_factory=lambda: {"default": 1000})
    points: list[PointSpec] = Field(min_length=1)
    # Default machine states and alarm rules for devices with this map (the `analytics.devices` schema).
    analytics: dict[str, Any] = Field(default_factory=dict)
    _compiled: list[MapPoint] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _validate(self) -> RegisterMap:
        errors = _group_errors(self.poll_groups)
        if self.byte_order.upper() not in ByteOrder.__members__:
            raise ValueError(f"byte_order {self.byte_order!r} is unknown (expected ABCD, CDAB, BADC or DCBA)")
        compiled: list[MapPoint] = []
        for index, spec in enumerate(self.points):
            point, point_errors = _compile(index, spec, self)
            errors.extend(point_errors)
            if point is not None:
                compiled.append(point)
        errors.extend(_duplicate_errors(self.points))
        errors.extend(overlap_errors(compiled))
        if errors:
            raise ValueError("invalid register map:\n  " + "\n  ".join(errors))
        self._compiled = compiled
        return self

    def analytics_defaults(self) -> dict[str, Any]:
        """The map's `analytics` section plus one bit rule per point marked `alarm:`."""
        rules = [
            {
                "name": p.path.replace("/", "."),
                "type": "bit",
                "signal": p.path,
                "active_value": p.alarm.value,
                "severity": p.alarm.severity,
                "message": p.alarm.message or p.description or p.path,
            }
            for p in self.points
            if p.alarm is not None
        ]
        if not rules:
            return dict(self.analytics)
        return {**self.analytics, "rules": [*self.analytics.get("rules", []), *rules]}

    @property
    def compiled(self) -> list[MapPoint]:
        """The validated entries, in map order."""
        return self._compiled

    def group_interval(self, group: str) -> float:
        """Poll period of a group in seconds."""
        return self.poll_groups[group] / 1000.0


def _group_errors(groups: Mapping[str, int]) -> list[str]:
    errors = []
    for name, interval in groups.items():
        if not name:
            errors.append("poll group names must not be empty")
        if not 1 <= interval <= 86_400_000:
            errors.append(f"poll group {name!r}: interval {interval} ms is outside 1..86400000")
    return errors


def _compile(index: int, spec: PointSpec, regmap: RegisterMap) -> tuple[MapPoint | None, list[str]]:
    """Check one entry and build its MapPoint; errors are prefixed with the entry's index and path."""
    label = f"entry {index} ({spec.path or '<no path>'})"
    errors = [f"{label}: {e}" for e in _entry_errors(spec, regmap)]
    if errors:
        return None, errors
    table, data_type = Table(spec.table), DataType(spec.type)
    codec = None
    if not table.is_bits:
        order = ByteOrder((spec.byte_order or regmap.byte_order).upper())
        codec = register_codec(data_type, order, spec.length or 0, spec.bit or 0)
    count = 1 if codec is None else codec.registers
    point = MapPoint(
        index=index,
        path=spec.path,
        table=table,
        address=spec.address,
        count=count,
        data_type=data_type,
        codec=codec,
        scale=spec.scale,
        offset=spec.offset,
        unit=spec.unit,
        access=_ACCESS[spec.access],
        group=spec.poll,
        minimum=spec.min,
        maximum=spec.max,
        description=spec.description,
    )
    if point.end - 1 > MAX_ADDRESS:
        return None, [f"{label}: registers {spec.address}..{point.end - 1} run past address {MAX_ADDRESS}"]
    return point, []


def _entry_errors(spec: PointSpec, regmap: RegisterMap) -> list[str]:
    """Everything wrong with one entry, as short phrases."""
    errors = _identity_errors(spec, regmap)
    if spec.table not in Table._value2member_map_:
        errors.append(f"unknown table {spec.table!r} (expected {', '.join(Table)})")
        return errors
    if spec.type not in DataType._value2member_map_:
        errors.append(f"unknown type {spec.type!r} (expected {', '.join(DataType)})")
        return errors
    table, data_type = Table(spec.table), DataType(spec.type)
    errors.extend(_shape_errors(spec, table, data_type))
    if spec.access in _ACCESS and _ACCESS[spec.access].writable and not table.writable:
        errors.append(f"{table} is read-only; access must be read")
    return errors


def _identity_errors(spec: PointSpec, regmap: RegisterMap) -> list[str]:
    errors = []
    if (
        not spec.path
        or spec.path != spec.path.strip()
        or spec.path.startswith("/")
        or spec.path.endswith("/")
    ):
        errors.append(f"path {spec.path!r} must be non-empty without leading/trailing '/' or spaces")
    if not 0 <= spec.address <= MAX_ADDRESS:
        errors.append(f"address {spec.address} is outside 0..{MAX_ADDRESS}")
    if spec.access not in _ACCESS:
        errors.append(f"access {spec.access!r} is unknown (expected read or read_write)")
    if spec.poll not in regmap.poll_groups:
        errors.append(f"poll group {spec.poll!r} is not defined (groups: {', '.join(regmap.poll_groups)})")
    if spec.byte_order is not None and spec.byte_order.upper() not in ByteOrder.__members__:
        errors.append(f"byte_order {spec.byte_order!r} is unknown (expected ABCD, CDAB, BADC or DCBA)")
    if not math.isfinite(spec.scale) or spec.scale == 0 or not math.isfinite(spec.offset):
        errors.append("scale must be a finite non-zero number and offset finite")
    if spec.min is not None and spec.max is not None and spec.min > spec.max:
        errors.append(f"min {spec.min} is above max {spec.max}")
    return errors


def _shape_errors(spec: PointSpec, table: Table, data_type: DataType) -> list[str]:
    """Type/table fit, string length, bit number, scaling of non-numbers."""
    errors = []
    if table.is_bits != (data_type is DataType.BOOL):
        errors.append(
            f"type {data_type} does not fit a {table}: bit tables hold bool, registers hold the rest"
        )
    if data_type is DataType.STRING:
        if spec.length is None or not 1 <= spec.length <= MAX_STRING_REGISTERS:
            errors.append(
                f"a string needs a length of 1..{MAX_STRING_REGISTERS} registers, got {spec.length}"
            )
    elif spec.length is not None:
        errors.append("length only applies to type string")
    if data_type is DataType.BIT:
        if spec.bit is None or not 0 <= spec.bit <= 15:
            errors.append(f"type bit needs a bit number 0..15, got {spec.bit}")
    elif spec.bit is not None:
        errors.append("bit only applies to type bit")
    numeric = TYPES[data_type].value_type.name in ("INT", "DOUBLE")
    if not numeric and (spec.scale != 1 or spec.offset != 0 or spec.min is not None or spec.max is not None):
        errors.append(f"scale, offset, min and max only apply to numbers, not {data_type}")
    return errors


def _duplicate_errors(specs: list[PointSpec]) -> list[str]:
    first: dict[str, int] = {}
    errors = []
    for index, spec in enumerate(specs):
        if spec.path in first:
            errors.append(
                f"entry {index} ({spec.path}): duplicate path, first used by entry {first[spec.path]}"
            )
        else:
            first[spec.path] = index
    return errors


def overlap_errors(points: list[MapPoint]) -> list[str]:
    """Entries whose addresses overlap in one table; bit entries may share a register, not a bit."""
    errors: list[str] = []
    spans: dict[Table, list[MapPoint]] = defaultdict(list)
    bits_seen: dict[tuple[Table, int], dict[int, MapPoint]] = {}
    for point in points:
        if point.data_type is DataType.BIT and point.codec is not None:
            used = bits_seen.setdefault((point.table, point.address), {})
            if point.codec.bit in used:
                errors.append(
                    f"{point.label}: bit {point.codec.bit} of {point.table} {point.address} "
                    f"is already used by {used[point.codec.bit].label}"
                )
            shared = bool(used)
            used.setdefault(point.codec.bit, point)
            if shared:
                continue  # the register is already a span through its first bit entry
        spans[point.table].append(point)
    for table_points in spans.values():
        errors.extend(_span_overlaps(sorted(table_points, key=lambda p: (p.address, p.index))))
    return errors


def _span_overlaps(ordered: list[MapPoint]) -> list[str]:
    errors = []
    last: MapPoint | None = None
    for point in ordered:
        if last is not None and point.address < last.end:
            errors.append(
                f"{point.label}: {point.table} {point.address} overlaps {last.label} "
                f"({last.address}..{last.end - 1})"
            )
        if last is None or point.end > last.end:
            last = point
    return errors


def shipped_maps() -> list[str]:
    """Names of the maps that ship in drivers/modbus/maps."""
    return sorted(p.stem for p in MAPS_DIR.glob("*.yaml"))


def is_map_name(text: str) -> bool:
    """Whether `text` is a shipped map name (not a path)."""
    return bool(_MAP_NAME.match(text)) and (MAPS_DIR / f"{text}.yaml").is_file()


def load_map(source: str | Mapping[str, Any] | RegisterMap, base_dir: Path | None = None) -> RegisterMap:
    """A validated map from a shipped name, a YAML file path or an inline mapping; ValueError otherwise."""
    if isinstance(source, RegisterMap):
        return source
    if isinstance(source, Mapping):
        return _validate(source, "inline map")
    if is_map_name(source):
        path = MAPS_DIR / f"{source}.yaml"
    else:
        try:
            path = relative_to_config(source, base_dir)
        except ValueError:  # "~someone/..." for a user this machine does not know
            raise ValueError(f"map {source!r}: cannot expand the home directory") from None
        if not path.is_file():
            raise ValueError(
                f"map {source!r} is neither a shipped map ({', '.join(shipped_maps())}) nor a readable file"
            )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, ValueError) as exc:  # ValueError: not UTF-8, a date like 2001-13-45
        raise ValueError(f"map file {path}: cannot read YAML: {exc}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ValueError(f"map file {path}: cannot read YAML: nested too deeply") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"map file {path}: expected a mapping with 'points', got {type(data).__name__}")
    return _validate(data, f"map file {path}")


def _validate(data: Mapping[str, Any], where: str) -> RegisterMap:
    try:
        return RegisterMap.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(part) for part in err["loc"])
            message = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"{loc}: {message}" if loc else message)
        raise ValueError(f"{where}: " + "\n".join(lines)) from None
