"""The one configuration file (YAML): pydantic models, loading, env overrides, clear errors."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from linebridge.analytics.config import AnalyticsConfig
from linebridge.audit.log import AuditConfig
from linebridge.commands.policy import DevicePolicy
from linebridge.commands.ratelimit import RateLimits
from linebridge.configbase import StrictModel
from linebridge.errors import ConfigError
from linebridge.security.config import ApprovalRule, GrpcLimits, SecurityConfig
from linebridge.transport.config import TransportConfig
from linebridge.uplink.config import UplinkConfig

DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
ENV_PREFIX = "LINEBRIDGE__"


def _check_address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT with a port 0-65535, got {value!r}")
    return value


class BridgeSection(StrictModel):
    """Identity of this bridge."""

    id: str = "linebridge"
    name: str = ""
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")


class GrpcConfig(StrictModel):
    """The gRPC API server."""

    address: str = "127.0.0.1:50051"
    # Serving a non-loopback address without TLS needs this set (or --insecure).
    insecure: bool = False
    max_receive_message_bytes: int = Field(1 << 20, ge=1024)
    grace_seconds: float = Field(2.0, ge=0)
    limits: GrpcLimits = Field(default_factory=GrpcLimits)

    _address = field_validator("address")(classmethod(lambda cls, v: _check_address(v)))


class MetricsConfig(StrictModel):
    """The Prometheus metrics endpoint."""

    enabled: bool = True
    address: str = "127.0.0.1:9464"

    _address = field_validator("address")(classmethod(lambda cls, v: _check_address(v)))


class DiscoveryConfig(StrictModel):
    """Zeroconf browsing for devices and advertising of the bridge."""

    enabled: bool = True
    # Interfaces (addresses) zeroconf binds to. Loopback by default; a plant picks its line NIC.
    interfaces: list[str] = Field(default_factory=lambda: ["127.0.0.1"], min_length=1)
    advertise: bool = True
    resolve_timeout_seconds: float = Field(3.0, gt=0)
    # Services matching none of these stay DISCOVERED until an admin approves them (none = approve nothing).
    auto_approve: list[ApprovalRule] = Field(default_factory=list)
    # Where manual approvals are kept across restarts (JSON); empty = in memory only.
    approvals_file: str = ""


class DeviceConfig(StrictModel):
    """One statically configured device."""

    id: str
    driver: str
    endpoint: str = Field(min_length=1)
    name: str = ""
    enabled: bool = True
    # Seconds between samples the device should take (OPC UA sampling interval, poll period).
    sampling_interval: float = Field(0.01, gt=0, le=3600)
    # Absolute deadband the device applies where it can (0 = every change).
    deadband: float = Field(0.0, ge=0)
    # Seconds without data or keep-alive after which the device counts as hung and goes OFFLINE (its
    # values turn STALE). Unset: the driver's default (OPC UA 2 x publishing interval + keep-alive,
    # UR 1 s at 500 Hz); 0: no bound.
    liveness_seconds: float | None = Field(None, ge=0, le=3600)
    # Driver-specific options; validated against the driver's own options model.
    options: dict[str, Any] = Field(default_factory=dict)
    # Who may command it and when motion/programs are safe (default: `policies`, then the defaults).
    policy: DevicePolicy | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not DEVICE_ID.fullmatch(value):  # fullmatch: '$' alone would let "robot-1\n" through
            raise ValueError(
                "expected lowercase letters, digits, '.', '_' or '-' (at most 63), e.g. 'robot-1'"
            )
        return value


class TelemetryConfig(StrictModel):
    """The telemetry bus and subscriptions."""

    # Samples a subscriber may have queued before the oldest are dropped (and counted).
    subscriber_queue_samples: int = Field(200_000, ge=1_000)
    max_subscriptions: int = Field(256, ge=1)
    # Largest string value (UTF-8 bytes) a driver may hand over; larger ones are cut (or emptied) and BAD.
    max_value_bytes: int = Field(65_536, ge=64, le=1 << 20)
    # What happens to a larger string: "truncate" keeps its first max_value_bytes, "bad" sends "".
    oversize_values: Literal["truncate", "bad"] = "truncate"
    # Largest Subscribe message and (default) Read response, in bytes: gRPC clients receive 4 MiB by
    # default, so a message is split before it grows past this.
    max_message_bytes: int = Field(4_000_000, ge=1 << 18, le=1 << 30)

    @model_validator(mode="after")
    def _value_fits_message(self) -> TelemetryConfig:
        if self.max_message_bytes < 2 * self.max_value_bytes + 4096:
            raise ValueError(
                f"max_message_bytes ({self.max_message_bytes}) must be at least twice max_value_bytes "
                f"({self.max_value_bytes}) plus 4096, so one value always fits in a message"
            )
        return self


class CommandsConfig(StrictModel):
    """The command manager."""

    default_timeout_seconds: float = Field(10.0, gt=0)
    max_timeout_seconds: float = Field(600.0, gt=0)
    queue_limit: int = Field(100, ge=1)
    history: int = Field(1000, ge=10)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    # A deadman (jogging, streamed targets) sends Stop when no heartbeat came for this long.
    deadman_interval_seconds: float = Field(0.5, gt=0, le=10)
    # Largest string or bytes value a write, method argument or program name may carry (UTF-8 bytes).
    max_value_bytes: int = Field(64 << 10, ge=16, le=1 << 20)

    @model_validator(mode="after")
    def _default_within_max(self) -> CommandsConfig:
        if self.default_timeout_seconds > self.max_timeout_seconds:
            raise ValueError(
                f"default_timeout_seconds ({self.default_timeout_seconds:g}) must not exceed "
                f"max_timeout_seconds ({self.max_timeout_seconds:g}): every command would be refused"
            )
        return self


class SessionsConfig(StrictModel):
    """Device connection supervision."""

    connect_timeout_seconds: float = Field(5.0, gt=0)
    backoff_initial_seconds: float = Field(0.2, gt=0)
    backoff_max_seconds: float = Field(10.0, gt=0)
    # The backoff starts again from backoff_initial_seconds only after a connection held this long, so a
    # device that accepts the connection and then fails is not hammered.
    healthy_after_seconds: float = Field(30.0, ge=0)


class Config(StrictModel):
    """The whole bridge configuration."""

    bridge: BridgeSection = Field(default_factory=BridgeSection)
    grpc: GrpcConfig = Field(default_factory=GrpcConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)
    devices: list[DeviceConfig] = Field(default_factory=list)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    commands: CommandsConfig = Field(default_factory=CommandsConfig)
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    uplink: UplinkConfig = Field(default_factory=UplinkConfig)
    transport: TransportConfig = Field(default_factory=TransportConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    # Command policy by device id glob ('robot-*'), for devices without a `policy` of their own.
    policies: dict[str, DevicePolicy] = Field(default_factory=dict)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    # Machine states, OEE (ISO 22400-2) and alarm rules (issue 14).
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)
    # Folder of the config file: relative paths in driver options (e.g. Modbus maps) resolve here.
    _base_dir: Path | None = PrivateAttr(default=None)

    @property
    def base_dir(self) -> Path | None:
        """The config file's folder (None when the config did not come from a file)."""
        return self._base_dir

    @field_validator("devices")
    @classmethod
    def _unique_ids(cls, devices: list[DeviceConfig]) -> list[DeviceConfig]:
        seen: set[str] = set()
        for device in devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} appears more than once")
            seen.add(device.id)
        return devices


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names valid at `loc`, to suggest a correction for a typo."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        inner = getattr(annotation, "__args__", None)
        current = inner[0] if inner else annotation
    return list(getattr(current, "model_fields", {}))


def describe_validation_error(
    source: str, error: ValidationError, model: type[BaseModel], prefix: tuple[Any, ...] = ()
) -> str:
    """One readable message for a pydantic error: file, field, what was expected, what was found."""
    lines = []
    for item in error.errors():
        loc = prefix + tuple(item["loc"])
        where = _location(loc)
        if item["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), _fields_at(model, tuple(item["loc"])), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(f"{source}: {where}: unknown field{hint}")
        else:
            found = item.get("input")
            shown = "" if isinstance(found, dict | list) else f" (got {found!r})"
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {where}: {message}{shown if 'got' not in message else ''}")
    return "\n".join(lines)


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """LINEBRIDGE__GRPC__ADDRESS=127.0.0.1:6000 sets grpc.address (values parsed as YAML scalars)."""
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if not parts:
            continue
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment {key}: {part} is not a section")
        node[parts[-1]] = _load_yaml(raw, f"environment {key}:")


def _load_yaml(text: str, where: str) -> Any:
    """Parse YAML text; ConfigError (prefixed with `where`) for anything the parser refuses."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{where}{at} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError(f"{where} not valid YAML: nested too deeply") from None
    except ValueError as exc:  # PyYAML constructors: a date like 2001-13-45, an int of 5000 digits
        raise ConfigError(f"{where} not valid YAML: {exc}") from None


def parse_config(data: Any, source: str = "<config>", env: Mapping[str, str] | None = None) -> Config:
    """Validate a config mapping (already parsed from YAML), applying env overrides."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    _apply_env(data, os.environ if env is None else env)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(source, exc, Config)) from None


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a YAML config file; raise ConfigError naming the file and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    config = parse_config(_load_yaml(text, f"{path}:"), str(path), env)
    config._base_dir = path.resolve().parent
    return config
