"""Property tests for config loading (oracles shared with fuzz/fuzz_config.py): ConfigError or a Config."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import fuzz_config as target
from linebridge.config import ENV_PREFIX, load_config, parse_config
from linebridge.errors import ConfigError
from linebridge.paths import compile_glob

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None)
SEED = yaml.safe_load(target.SEED_CONFIG)
SEED_MAP = yaml.safe_load(target.SEED_MAP)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "127.0.0.1:0",
            "modbus+tcp://[::1",
            "mqtt://h:99999",
            "ABCD",
            "*",
            "a/**/b",
            "~nobody-here/m.yaml",
            "map.yaml",
            "vfd",
            "robot-1\n",
            "Robot 1",
            "-1",
            "1e309",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a parsed YAML document."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """`document` with one to three values (or whole sections) replaced by arbitrary YAML values."""
    result = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(result)))
        if not path:
            continue
        node = result
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = draw(values)
    return result


@FUZZ
@given(mutated(SEED), mutated(SEED_MAP))
def test_mutated_configs_load_or_raise_config_error(config: Any, regmap: Any) -> None:
    target.check_config(yaml.safe_dump(config).encode(), yaml.safe_dump(regmap).encode())


@FUZZ
@given(st.text(max_size=300))
def test_any_text_loads_or_raises_config_error(text: str) -> None:
    target.check_config(text.encode())


@FUZZ
@given(st.binary(max_size=200), st.binary(max_size=100))
def test_any_bytes_load_or_raise_config_error(config: bytes, regmap: bytes) -> None:
    target.check_config(config, regmap)


@FUZZ
@given(st.sampled_from(target.ENV_KEYS), st.text(max_size=40))
def test_environment_overrides_load_or_raise_config_error(key: str, value: str) -> None:
    target.check_config(target.SEED_CONFIG, target.SEED_MAP, {ENV_PREFIX + key: value})


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_entry_point_on_raw_bytes(data: bytes) -> None:
    target.one_input(data)


def test_seeds_pass() -> None:
    assert target.check_config(target.SEED_CONFIG, target.SEED_MAP) is not None
    for seed in target.seeds():
        target.one_input(seed)


# --- regressions found by fuzzing -----------------------------------------------------------------

FILE_CASES = {
    "not UTF-8": (b"\xff\xfebridge: {}\n", "not UTF-8 text"),
    "impossible date": (b"bridge: {name: 2001-13-45}\n", "month must be in 1..12"),
    "5000-digit int": (b"grpc: {grace_seconds: " + b"1" * 5000 + b"}\n", "4300 digits"),
    "deep nesting": (b"devices: " + b"[" * 3000, "nested too deeply"),
}


@pytest.mark.parametrize("name", FILE_CASES)
def test_config_files_that_crashed_the_loader(name: str) -> None:
    """Found by fuzz_config: UnicodeDecodeError, ValueError (date, int digit limit) and RecursionError
    escaped load_config instead of a ConfigError naming the file."""
    text, message = FILE_CASES[name]
    with pytest.raises(ConfigError, match=message) as raised:
        load_config(_write(text), env={})
    assert "linebridge.yaml" in str(raised.value)


@pytest.mark.parametrize("value", ["[unclosed", "2001-13-45", "{a: [" * 400])
def test_environment_overrides_that_crashed_the_loader(value: str) -> None:
    """Found by fuzz_config: a bad YAML value in LINEBRIDGE__* raised yaml.YAMLError/ValueError/RecursionError."""
    with pytest.raises(ConfigError, match="environment LINEBRIDGE__BRIDGE__NAME: .*not valid YAML"):
        parse_config({}, "cfg", env={"LINEBRIDGE__BRIDGE__NAME": value})


@pytest.mark.parametrize(
    ("map_value", "map_text", "message"),
    [
        ("~nobody-here-xyz/m.yaml", b"", "cannot expand the home directory"),
        ("map.yaml", b"points: " + b"[" * 3000, "nested too deeply"),
        ("map.yaml", b"\xff points: []", "cannot read YAML"),
        (
            "map.yaml",
            b"points: [{path: a, table: coil, address: 2001-13-45, type: bool}]",
            "month must be in 1..12",
        ),
    ],
)
def test_modbus_map_files_that_crashed_the_loader(map_value: str, map_text: bytes, message: str) -> None:
    """Found by fuzz_config: Path.expanduser raised RuntimeError, PyYAML RecursionError, through the options check."""
    config = (
        f"devices: [{{id: plc-1, driver: modbus, endpoint: 'modbus://h', options: {{map: '{map_value}'}}}}]"
    )
    with pytest.raises(ConfigError, match=message):
        (target.workdir() / "map.yaml").write_bytes(map_text)
        target.catalog().check(load_config(_write(config.encode()), env={}), "cfg")


def test_a_device_id_with_a_trailing_newline_is_refused() -> None:
    """Found by fuzz_config: DEVICE_ID.match let "robot-1\\n" through ('$' matches before a final newline)."""
    with pytest.raises(ConfigError, match=r"devices\[0\]\.id"):
        parse_config({"devices": [{"id": "robot-1\n", "driver": "sim", "endpoint": "sim://x"}]}, env={})


def _write(text: bytes) -> str:
    path = target.workdir() / "linebridge.yaml"
    path.write_bytes(text)
    return str(path)


def test_a_glob_of_many_double_stars_matches_in_no_time() -> None:
    """Found while fuzzing config globs (uplink.deadbands, cloud_writable; gRPC subscriptions use the same
    matcher): "**/**/.../x" backtracked exponentially; ten "**" against 20 segments took 25 s, 40 would
    never finish (this test then fails by the suite's per-test timeout)."""
    glob = "/".join(["**"] * 40 + ["x"])
    config = target.check_config(b"uplink: {deadbands: {'" + glob.encode() + b"': 0.5}}\n")
    assert config is not None and list(config.uplink.deadbands) == [glob]
    compiled = compile_glob(glob)
    assert not compiled.matches("/".join(["a"] * 40)) and compiled.matches("/".join(["a"] * 39 + ["x"]))
    assert compile_glob("**/a/**/b").matches("a/x/b") and not compile_glob("**/a/**/b").matches("b/a")
