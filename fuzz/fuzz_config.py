"""Fuzz target: configuration files — YAML loading, the config model, environment overrides, and
every driver's options (Modbus register maps inline and from a map file next to the config).

Contract (bridge/config.py, bridge/driver_catalog.py): whatever the file holds, loading and checking
it either gives a Config or raises ConfigError naming the file; nothing else escapes.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from fuzz.engine import Cursor, chunked, instrumented, run

with instrumented(__name__, "yaml"):
    from linebridge.config import DEVICE_ID, ENV_PREFIX, Config, load_config
    from linebridge.devices.catalog import DriverCatalog
    from linebridge.errors import ConfigError
    from linebridge.paths import compile_glob
    from linebridge.uplink.cloud_commands import writable_globs

SAMPLE_PATHS = ("plc-1/a/b", "sim-1/setpoint", "robot-1/joints/1/actual_position", "/".join(["a"] * 40))
ENV_KEYS = (
    "GRPC__ADDRESS",
    "BRIDGE__ID",
    "DEVICES",
    "UPLINK__BROKER",
    "UPLINK__DEADBANDS",
    "METRICS",
    "TELEMETRY__MAX_SUBSCRIPTIONS",
    "DISCOVERY__INTERFACES",
    "",
    "GRPC__ADDRESS__X",
)


@cache
def catalog() -> DriverCatalog:
    """The installed drivers (entry points), as the bridge loads them."""
    return DriverCatalog.from_entry_points()


@cache
def workdir() -> Path:
    """A private folder for the config file and its map file, reused for every input, removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="linebridge-fuzz-config-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def check_config(text: bytes, map_text: bytes = b"", env: dict[str, str] | None = None) -> Config | None:
    """Load `text` as linebridge.yaml (with map.yaml beside it) and check every device's options."""
    folder = workdir()
    (folder / "map.yaml").write_bytes(map_text)
    path = folder / "linebridge.yaml"
    path.write_bytes(text)
    try:
        config = load_config(path, env={} if env is None else env)
        catalog().check(config, str(path))
    except ConfigError as exc:
        assert str(exc), "a ConfigError without a message"
        return None
    for device in config.devices:
        assert DEVICE_ID.fullmatch(device.id), f"device id {device.id!r} accepted"
    assert config.uplink.host and 0 <= config.uplink.port <= 65535
    globs = [compile_glob(g) for g in config.uplink.deadbands] + writable_globs(config.uplink.cloud_writable)
    for glob in globs:  # matched at runtime against every signal: must be quick for any glob
        for path in SAMPLE_PATHS:
            glob.matches(path)
    return config


def one_input(data: bytes) -> None:
    """libFuzzer entry: an environment override, a map file, then the config file."""
    cursor = Cursor(data)
    env = {}
    if cursor.byte() % 2:
        env[ENV_PREFIX + cursor.choice(ENV_KEYS)] = cursor.text()
    map_text = cursor.chunk()
    check_config(cursor.rest(), map_text, env)


SEED_CONFIG = b"""\
bridge: {id: cell-7, name: Cell 7, log_level: INFO}
grpc: {address: "127.0.0.1:0", max_receive_message_bytes: 1048576}
metrics: {enabled: false}
discovery: {enabled: false, interfaces: [127.0.0.1]}
devices:
  - {id: plc-1, driver: modbus, endpoint: "modbus+tcp://127.0.0.1:5020", options: {unit: 1, map: map.yaml}}
  - id: plc-2
    driver: modbus
    endpoint: modbus+tcp://127.0.0.1:5021
    options:
      map:
        byte_order: CDAB
        poll_groups: {fast: 100}
        points:
          - {path: a/b, table: holding_register, address: 0, type: float32, scale: 0.5, poll: fast}
          - {path: a/s, table: input_register, address: 4, type: string, length: 4, poll: fast}
  - {id: vfd-1, driver: modbus, endpoint: "modbus://127.0.0.1", options: {map: vfd, timeout: 0.5}}
  - {id: ur-1, driver: ur, endpoint: "ur://127.0.0.1?rtde=30004", options: {frequency: 125, joint_limits: [[-1, 1], [-1, 1], [-1, 1], [-1, 1], [-1, 1], [-1, 1]]}}
  - {id: robot-1, driver: opcua, endpoint: "opc.tcp://127.0.0.1:4840", options: {browse_root: "ns=2;s=Robot"}}
  - {id: sim-1, driver: sim, endpoint: "sim://x", sampling_interval: 0.1, options: {signals: 3}}
telemetry: {subscriber_queue_samples: 10000}
uplink:
  enabled: false
  broker: mqtt://127.0.0.1:1883
  deadbands: {"plc-*/a/*": 0.5}
  cloud_writable: {"sim-*": [setpoint]}
  outbox: {policy: drop_oldest}
"""
SEED_MAP = b"""\
device: {kind: plc, vendor: ACME}
poll_groups: {default: 500}
points:
  - {path: x/y, table: coil, address: 3, type: bool, access: read_write}
  - {path: x/z, table: holding_register, address: 10, type: bit, bit: 3}
  - {path: x/w, table: holding_register, address: 11, type: int64, byte_order: DCBA, scale: 10}
"""


def seeds() -> Iterator[bytes]:
    """A config using every driver, a map file, and a few environment overrides."""
    yield b"\x00" + chunked(SEED_MAP) + SEED_CONFIG
    yield b"\x01\x00" + chunked(b"127.0.0.1:7000", SEED_MAP) + SEED_CONFIG
    yield b"\x01\x02" + chunked(b"[{id: a, driver: sim, endpoint: 'sim://a'}]", b"") + b"{}"
    yield b"\x00\x00" + b"a: 2001-01-01\nb: !!binary aGVsbG8=\nc: &x [1, *x]\n"


if __name__ == "__main__":
    run(one_input, seeds)
