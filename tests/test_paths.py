"""Path globs."""

from __future__ import annotations

import pytest

from linebridge.errors import InvalidArgument
from linebridge.paths import compile_glob, split_path


@pytest.mark.parametrize(
    ("glob", "path", "expected"),
    [
        ("robot-1/*", "robot-1/axes/3/actual_position", True),
        ("robot-1/*", "robot-2/axes/3/actual_position", False),
        ("*/axes/*/actual_position", "robot-1/axes/3/actual_position", True),
        ("*/axes/*/actual_position", "robot-1/axes/3/actual_speed", False),
        ("*/axes/*/actual_position", "robot-1/axes/3/x/actual_position", False),
        ("*", "a/b/c", True),
        ("**/temperature", "a/b/temperature", True),
        ("**/temperature", "a/temperature", True),
        ("robot-*/safety/*", "robot-12/safety/emergency_stop", True),
        ("robot-1/axes/3/actual_position", "robot-1/axes/3/actual_position", True),
        ("robot-1/axes/3", "robot-1/axes/3/actual_position", False),
    ],
)
def test_matching(glob, path, expected):
    assert compile_glob(glob).matches(path) is expected


@pytest.mark.parametrize("glob", ["", "a//b", "/a", "a/", "a b/c", "a/b**", "a/[x]", "a/?", "x" * 600])
def test_malformed(glob):
    with pytest.raises(InvalidArgument):
        compile_glob(glob)


def test_whole_device_selection():
    assert compile_glob("robot-1/*").selects_whole_device("robot-1")
    assert compile_glob("*").selects_whole_device("anything")
    assert not compile_glob("robot-1/axes/*").selects_whole_device("robot-1")
    assert not compile_glob("robot-2/*").selects_whole_device("robot-1")


def test_split_path():
    assert split_path("plc-1/conveyor/speed") == ("plc-1", "conveyor/speed")
    with pytest.raises(InvalidArgument):
        split_path("plc-1")
