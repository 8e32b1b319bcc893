"""RTDE wire format: encode/decode checked against hand-assembled bytes (RTDE guide layouts)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linebridge.drivers.ur import rtde
from linebridge.drivers.ur.catalog import OUTPUT_TYPES
from linebridge.drivers.ur.fields import DASHBOARD_SIGNALS, FIELDS
from linebridge.drivers.ur.rtde import MessageLevel, PackageType, ProtocolError, Recipe, RtdeFramer, RtdeType


def test_package_type_letters_match_the_guide():
    assert {t.name: chr(t) for t in PackageType} == {
        "REQUEST_PROTOCOL_VERSION": "V",
        "GET_URCONTROL_VERSION": "v",
        "TEXT_MESSAGE": "M",
        "DATA_PACKAGE": "U",
        "CONTROL_PACKAGE_SETUP_OUTPUTS": "O",
        "CONTROL_PACKAGE_SETUP_INPUTS": "I",
        "CONTROL_PACKAGE_START": "S",
        "CONTROL_PACKAGE_PAUSE": "P",
    }


def test_client_requests_bytes():
    assert rtde.request_protocol_version(2) == b"\x00\x05V\x00\x02"
    assert rtde.get_urcontrol_version() == b"\x00\x03v"
    assert rtde.start() == b"\x00\x03S"
    assert rtde.pause() == b"\x00\x03P"
    # size 3 + 8 (double 125.0) + 18 ("timestamp,actual_q") = 29 = 0x1d
    assert rtde.setup_outputs(["timestamp", "actual_q"], 125.0) == (
        b"\x00\x1dO" + bytes.fromhex("405f400000000000") + b"timestamp,actual_q"
    )


def test_controller_answers_bytes():
    assert rtde.accepted(PackageType.REQUEST_PROTOCOL_VERSION, True) == b"\x00\x04V\x01"
    assert rtde.accepted(PackageType.CONTROL_PACKAGE_START, False) == b"\x00\x04S\x00"
    assert rtde.urcontrol_version(5, 15, 0, 118022) == (
        b"\x00\x13v" + bytes.fromhex("000000050000000f000000000001cd06")
    )
    assert rtde.setup_outputs_reply(1, ["DOUBLE", "NOT_FOUND"]) == b"\x00\x14O\x01DOUBLE,NOT_FOUND"


def test_decode_answers():
    framer = RtdeFramer()
    packages = framer.feed(
        b"\x00\x04V\x01" + b"\x00\x13v" + bytes.fromhex("00000005000000040000000100000002")
    )
    assert [(t, p) for t, p in packages][0] == (ord("V"), b"\x01")
    assert rtde.decode_accepted(packages[0][1]) is True
    assert rtde.decode_urcontrol_version(packages[1][1]) == (5, 4, 1, 2)
    recipe_id, types = rtde.decode_setup_outputs_reply(b"\x07DOUBLE,VECTOR6D,NOT_FOUND")
    assert (recipe_id, types) == (7, ["DOUBLE", "VECTOR6D", "NOT_FOUND"])


def test_decode_setup_outputs_request_roundtrip():
    package = rtde.setup_outputs(["actual_q", "robot_mode"], 500.0)
    ((_, payload),) = RtdeFramer().feed(package)
    assert rtde.decode_setup_outputs_request(payload) == (500.0, ["actual_q", "robot_mode"])


def test_text_message_v2_layout():
    # uint8 len, "hi", uint8 len, "RTDE", uint8 level 3 (INFO): payload 9 bytes, size 12
    wire = b"\x00\x0cM\x02hi\x04RTDE\x03"
    assert rtde.text_message("hi", "RTDE", MessageLevel.INFO) == wire
    ((_, payload),) = RtdeFramer().feed(wire)
    assert rtde.decode_text_message(payload) == rtde.TextMessage("hi", "RTDE", MessageLevel.INFO)
    with pytest.raises(ProtocolError):
        rtde.decode_text_message(b"\x05hi")


def test_data_package_decode_from_bytes():
    recipe = Recipe(
        1,
        (
            "timestamp",
            "actual_q",
            "robot_mode",
            "runtime_state",
            "actual_digital_input_bits",
            "output_bit_register_64",
            "tool_output_mode",
        ),
        (
            RtdeType.DOUBLE,
            RtdeType.VECTOR6D,
            RtdeType.INT32,
            RtdeType.UINT32,
            RtdeType.UINT64,
            RtdeType.BOOL,
            RtdeType.UINT8,
        ),
    )
    payload = (
        b"\x01"
        + bytes.fromhex("3ff8000000000000")  # 1.5
        + bytes.fromhex("bfd0000000000000") * 6  # -0.25 x 6
        + b"\xff\xff\xff\xff"  # INT32 -1
        + b"\x00\x00\x00\x02"  # UINT32 2
        + b"\x00\x00\x00\x00\x00\x01\x00\x01"  # UINT64 65537
        + b"\x01"
        + b"\x09"
    )
    wire = struct.pack(">HB", 3 + len(payload), ord("U")) + payload
    ((package_type, body),) = RtdeFramer().feed(wire)
    assert package_type == PackageType.DATA_PACKAGE
    assert recipe.decode(body) == (1, 1.5, *([-0.25] * 6), -1, 2, 65537, True, 9)
    assert recipe.offsets() == {
        "timestamp": 1,
        "actual_q": 2,
        "robot_mode": 8,
        "runtime_state": 9,
        "actual_digital_input_bits": 10,
        "output_bit_register_64": 11,
        "tool_output_mode": 12,
    }
    assert recipe.encode_package([1.5, *([-0.25] * 6), -1, 2, 65537, True, 9]) == wire


def test_data_package_that_does_not_fit_the_recipe_is_rejected():
    recipe = Recipe(2, ("timestamp",), (RtdeType.DOUBLE,))
    with pytest.raises(ProtocolError, match="5 bytes, recipe 2 needs 9"):
        recipe.decode(b"\x02" + b"\x00" * 4)
    with pytest.raises(ProtocolError, match="recipe 3"):
        recipe.decode(b"\x03" + b"\x00" * 8)


def test_framer_reassembles_split_and_coalesced_packages():
    wire = (
        rtde.start() + rtde.accepted(PackageType.CONTROL_PACKAGE_PAUSE, True) + rtde.get_urcontrol_version()
    )
    framer = RtdeFramer()
    got = []
    for byte in wire:
        got += framer.feed(bytes([byte]))
    assert got == [(ord("S"), b""), (ord("P"), b"\x01"), (ord("v"), b"")]
    assert framer.pending == 0
    assert framer.feed(b"\x00\x04") == [] and framer.pending == 2


def test_framer_rejects_size_below_header():
    with pytest.raises(ProtocolError, match="smaller than the 3-byte header"):
        RtdeFramer().feed(b"\x00\x02U")


def test_framer_rejects_unknown_package_type():
    with pytest.raises(ProtocolError, match="unknown package type 90"):
        RtdeFramer().feed(b"\x00\x03Z")


def test_unknown_type_name_in_recipe_answer_is_a_protocol_error():
    assert rtde.parse_type("VECTOR6D") is RtdeType.VECTOR6D
    with pytest.raises(ProtocolError, match="FLOAT128"):
        rtde.parse_type("FLOAT128")


def test_package_larger_than_size_field_refused():
    with pytest.raises(ValueError):
        rtde.encode_package(PackageType.TEXT_MESSAGE, b"x" * 70000)


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20))
def test_framer_output_does_not_depend_on_chunking(cuts):
    packages = [
        rtde.request_protocol_version(2),
        rtde.setup_outputs(["timestamp"], 10.0),
        rtde.text_message("x" * 30, "src", MessageLevel.WARNING),
        rtde.start(),
    ] * 3
    wire = b"".join(packages)
    framer, got, position = RtdeFramer(), [], 0
    for cut in cuts * 100:
        if position >= len(wire):
            break
        got += framer.feed(wire[position : position + cut])
        position += cut
    got += framer.feed(wire[position:])
    assert [bytes([t]) for t, _ in got] == [p[2:3] for p in packages]


def test_signal_table_matches_the_controller_catalog():
    paths = []
    for field in FIELDS:
        assert OUTPUT_TYPES[field.name] is field.rtde_type, field.name
        assert len(field.paths) == len(field.units) == field.rtde_type.count, field.name
        paths += field.paths
    paths += [d.path for d in DASHBOARD_SIGNALS]
    assert len(paths) == len(set(paths))
    assert "joints/3/actual_position" in paths and "tcp/pose/rz" in paths and "tcp/force/fz" in paths
