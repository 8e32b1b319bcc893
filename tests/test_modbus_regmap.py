"""Register maps: shipped maps load, every bad entry is rejected with its index and path, options load maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from linebridge.drivers.base import Access, DeviceKind, ValueType
from linebridge.drivers.modbus.codec import ByteOrder, DataType
from linebridge.drivers.modbus.driver import ModbusOptions
from linebridge.drivers.modbus.points import Table
from linebridge.drivers.modbus.regmap import load_map, shipped_maps


def entry(**fields: Any) -> dict[str, Any]:
    base = {"path": "x/y", "table": "holding_register", "address": 0, "type": "uint16"}
    base.update(fields)
    return base


def one_map(*entries: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"points": list(entries), **extra}


@pytest.mark.parametrize("name", shipped_maps())
def test_every_shipped_map_loads(name: str) -> None:
    regmap = load_map(name)
    assert regmap.compiled, name
    assert all(p.path for p in regmap.compiled)


def test_shipped_maps_include_the_cell_plc() -> None:
    assert {"cell-plc", "vfd", "power-meter", "remote-io"} <= set(shipped_maps())


def test_cell_plc_map_contents() -> None:
    regmap = load_map("cell-plc")
    points = {p.path: p for p in regmap.compiled}
    speed = points["conveyor/speed"]
    assert (speed.table, speed.address, speed.data_type, speed.count) == (
        Table.HOLDING_REGISTER,
        0,
        DataType.FLOAT32,
        2,
    )
    assert speed.access is Access.READ_WRITE and speed.maximum == 2.0 and speed.unit == "m/s"
    assert points["cell/cycle_time"].value_type is ValueType.DOUBLE
    assert points["conveyor/part_count"].data_type is DataType.UINT32
    assert regmap.device.device_kind is DeviceKind.PLC
    assert regmap.group_interval("fast") == 0.25


# (entries, expected fragment of the error); each names its entry by index and path.
BAD_ENTRIES = [
    ([entry(path="a"), entry(path="b", address=0)], "entry 1 (b): holding_register 0 overlaps entry 0 (a)"),
    (
        [entry(path="a", type="float32"), entry(path="b", address=1)],
        "entry 1 (b): holding_register 1 overlaps entry 0 (a)",
    ),
    ([entry(path="a", address=70000)], "entry 0 (a): address 70000 is outside 0..65535"),
    ([entry(path="a", address=-1)], "entry 0 (a): address -1 is outside"),
    (
        [entry(path="a", address=65535, type="uint32")],
        "entry 0 (a): registers 65535..65536 run past address 65535",
    ),
    ([entry(path="a", type="float128")], "entry 0 (a): unknown type 'float128'"),
    ([entry(path="a", table="memory")], "entry 0 (a): unknown table 'memory'"),
    ([entry(path="a", type="string", length=0)], "entry 0 (a): a string needs a length of 1..125"),
    ([entry(path="a", type="string")], "entry 0 (a): a string needs a length"),
    ([entry(path="a", type="string", length=126)], "entry 0 (a): a string needs a length of 1..125"),
    ([entry(path="a", type="bit", bit=16)], "entry 0 (a): type bit needs a bit number 0..15, got 16"),
    ([entry(path="a", type="bit")], "entry 0 (a): type bit needs a bit number"),
    ([entry(path="a", bit=3)], "entry 0 (a): bit only applies to type bit"),
    ([entry(path="a", length=3)], "entry 0 (a): length only applies to type string"),
    (
        [entry(path="a", table="input_register", access="read_write")],
        "entry 0 (a): input_register is read-only",
    ),
    (
        [entry(path="a", table="discrete_input", type="bool", access="read_write")],
        "entry 0 (a): discrete_input is read-only",
    ),
    ([entry(path="a"), entry(path="a", address=5)], "entry 1 (a): duplicate path, first used by entry 0"),
    ([entry(path="a", poll="turbo")], "entry 0 (a): poll group 'turbo' is not defined"),
    ([entry(path="a", type="bool")], "entry 0 (a): type bool does not fit a holding_register"),
    ([entry(path="a", table="coil", type="uint16")], "entry 0 (a): type uint16 does not fit a coil"),
    ([entry(path="a", byte_order="ABDC")], "entry 0 (a): byte_order 'ABDC' is unknown"),
    ([entry(path="a", min=5, max=1)], "entry 0 (a): min 5.0 is above max 1.0"),
    ([entry(path="a", scale=0)], "entry 0 (a): scale must be a finite non-zero number"),
    ([entry(path="a", access="write_only")], "entry 0 (a): access 'write_only' is unknown"),
    (
        [entry(path="a", table="coil", type="bool", scale=2)],
        "entry 0 (a): scale, offset, min and max only apply to numbers",
    ),
    ([entry(path="/a")], "entry 0 (/a): path '/a' must be non-empty"),
    (
        [entry(path="a", type="bit", bit=1), entry(path="b", type="bit", bit=1)],
        "entry 1 (b): bit 1 of holding_register 0 is already used by entry 0 (a)",
    ),
    (
        [entry(path="a", type="bit", bit=1), entry(path="b", address=0)],
        "entry 1 (b): holding_register 0 overlaps entry 0 (a)",
    ),
]


@pytest.mark.parametrize(("entries", "message"), BAD_ENTRIES)
def test_bad_entries_are_rejected_naming_the_entry(entries: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        load_map(one_map(*entries))
    assert message in str(caught.value)


def test_all_errors_are_reported_at_once() -> None:
    with pytest.raises(ValueError) as caught:
        load_map(one_map(entry(path="a", type="nope"), entry(path="b", address=99999)))
    assert "entry 0 (a)" in str(caught.value) and "entry 1 (b)" in str(caught.value)


def test_map_level_errors() -> None:
    with pytest.raises(ValueError, match="byte_order 'XYZW'"):
        load_map(one_map(entry(), byte_order="XYZW"))
    with pytest.raises(ValueError, match="interval 0 ms"):
        load_map(one_map(entry(), poll_groups={"default": 0}))
    with pytest.raises(ValueError, match="device kind 'toaster'"):
        load_map(one_map(entry(), device={"kind": "toaster"}))
    with pytest.raises(ValueError, match="points"):
        load_map({"points": []})
    with pytest.raises(ValueError, match="bogus"):
        load_map(one_map(entry(), bogus=1))


def test_bits_of_one_register_may_share_it() -> None:
    regmap = load_map(
        one_map(*(entry(path=f"s/b{b}", type="bit", bit=b) for b in range(16)), entry(path="n", address=1))
    )
    assert len(regmap.compiled) == 17


def test_same_address_in_different_tables_is_fine() -> None:
    regmap = load_map(
        one_map(
            entry(path="a"),
            entry(path="b", table="input_register"),
            entry(path="c", table="coil", type="bool"),
            entry(path="d", table="discrete_input", type="bool"),
        )
    )
    assert {p.table for p in regmap.compiled} == set(Table)


def test_defaults_and_case_are_normalised() -> None:
    regmap = load_map(
        one_map(
            entry(path="a", type="FLOAT32", table="Holding_Register"),
            entry(path="b", address=2, type="int32", byte_order="dcba"),
            byte_order="cdab",
        )
    )
    a, b = regmap.compiled
    assert a.codec is not None and a.codec.order is ByteOrder.CDAB
    assert b.codec is not None and b.codec.order is ByteOrder.DCBA


def test_yaml_file_and_relative_path(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "pump.yaml").write_text(
        "poll_groups: {default: 250}\npoints:\n  - {path: pump/rpm, table: input_register, address: 7, type: uint16}\n"
    )
    regmap = load_map("maps/pump.yaml", base_dir=tmp_path)
    assert regmap.compiled[0].address == 7
    options = ModbusOptions.model_validate({"map": "maps/pump.yaml"}, context={"config_dir": str(tmp_path)})
    assert options.map.compiled[0].path == "pump/rpm"
    assert (
        ModbusOptions.model_validate({"map": str(tmp_path / "maps" / "pump.yaml")}).map.group_interval(
            "default"
        )
        == 0.25
    )


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("points: [\n")
    with pytest.raises(ValueError, match="broken.yaml: cannot read YAML"):
        load_map(str(broken))
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("points:\n  - {path: a, table: coil, address: 0, type: float32}\n")
    with pytest.raises(
        ValueError, match=r"(?s)invalid.yaml: .*entry 0 \(a\): type float32 does not fit a coil"
    ):
        load_map(str(invalid))
    with pytest.raises(ValueError, match="neither a shipped map"):
        load_map(str(tmp_path / "missing.yaml"))
    with pytest.raises(ValueError, match="neither a shipped map"):
        load_map("no-such-map")


def test_options_validation() -> None:
    options = ModbusOptions.model_validate({"map": "cell-plc", "unit": 7})
    assert options.unit == 7 and options.limits.max_registers == 125
    for bad in (
        {"map": "cell-plc", "unit": 256},
        {"map": "cell-plc", "unit": -1},
        {"map": "cell-plc", "colour": 1},
        {"map": "cell-plc", "timeout": 0},
        {"map": "cell-plc", "max_registers": 126},
        {},
    ):
        with pytest.raises(ValidationError):
            ModbusOptions.model_validate(bad)
    with pytest.raises(ValidationError, match=r"entry 0 \(s\): 10 registers exceed max_registers 8"):
        ModbusOptions.model_validate(
            {"map": one_map(entry(path="s", type="string", length=10)), "max_registers": 8}
        )
    with pytest.raises(ValidationError, match=r"(?s)inline map: .*entry 0 \(a\): unknown type"):
        ModbusOptions.model_validate({"map": one_map(entry(path="a", type="complex"))})
