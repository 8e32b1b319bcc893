"""Config loading: a bad file gets one clear message naming the file and field; nothing starts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from linebridge.config import load_config, parse_config
from linebridge.errors import ConfigError

GOOD = """
bridge: {id: line-7}
grpc: {address: "127.0.0.1:0"}
devices:
  - id: robot-1
    driver: sim
    endpoint: sim://robot-1
    options: {signals: 3}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_file_and_defaults(tmp_path, catalog):
    config = load_config(write(tmp_path, GOOD), env={})
    catalog.check(config, "bridge.yaml")
    assert config.bridge.id == "line-7" and config.devices[0].options == {"signals": 3}
    assert config.discovery.interfaces == ["127.0.0.1"]  # loopback unless a plant chooses otherwise
    assert config.metrics.address == "127.0.0.1:9464"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("grpc: {adress: '127.0.0.1:1'}", "grpc.adress: unknown field (did you mean 'address'?)"),
        (
            "devices: [{id: r1, driver: sim, endpoint: x, sampling_intervall: 1}]",
            "devices[0].sampling_intervall: unknown field (did you mean 'sampling_interval'?)",
        ),
        ("devices: [{id: Robot 1, driver: sim, endpoint: x}]", "devices[0].id: expected lowercase"),
        ("grpc: {address: nowhere}", "grpc.address: expected HOST:PORT"),
        ("devices: [{id: r1, driver: sim}]", "devices[0].endpoint: Field required"),
        (
            "devices: [{id: r1, driver: sim, endpoint: a}, {id: r1, driver: sim, endpoint: b}]",
            "appears more than once",
        ),
        ("telemetry: {subscriber_queue_samples: ten}", "telemetry.subscriber_queue_samples"),
        ("- just\n- a list", "expected a mapping at the top level"),
        ("grpc: {address: [unclosed", "not valid YAML"),
    ],
)
def test_bad_files_name_the_field(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert expected in str(info.value)
    assert str(tmp_path / "bridge.yaml") in str(info.value)


def test_unknown_driver_and_bad_driver_options(tmp_path, catalog):
    config = load_config(write(tmp_path, "devices: [{id: r1, driver: opcuaa, endpoint: x}]"), env={})
    with pytest.raises(ConfigError, match=r"devices\[0\].driver: unknown driver 'opcuaa' \(known: .*sim"):
        catalog.check(config, "f.yaml")
    config = load_config(
        write(tmp_path, "devices: [{id: r1, driver: sim, endpoint: x, options: {signalz: 2}}]"), env={}
    )
    with pytest.raises(
        ConfigError, match=r"devices\[0\].options.signalz: unknown field \(did you mean 'signals'\?\)"
    ):
        catalog.check(config, "f.yaml")


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config("/nonexistent/bridge.yaml", env={})


def test_env_overrides():
    config = parse_config(
        {}, env={"LINEBRIDGE__GRPC__ADDRESS": "127.0.0.1:6000", "LINEBRIDGE__BRIDGE__ID": "b9", "OTHER": "x"}
    )
    assert config.grpc.address == "127.0.0.1:6000" and config.bridge.id == "b9"
    with pytest.raises(ConfigError, match="grpc.adress"):
        parse_config({}, env={"LINEBRIDGE__GRPC__ADRESS": "x"})


def test_cli_refuses_to_start_with_a_typo(tmp_path):
    path = write(tmp_path, GOOD.replace("endpoint:", "endpiont:"))
    result = subprocess.run(
        [sys.executable, "-m", "linebridge.cli", "run", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "devices[0].endpiont: unknown field (did you mean 'endpoint'?)" in result.stderr
    assert "Traceback" not in result.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "linebridge.cli", "run", "-c", str(write(tmp_path, GOOD)), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and "OK (1 device(s))" in ok.stdout
