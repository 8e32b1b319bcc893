"""The `uplink` section of the config file: broker, Sparkplug identity, batching, outbox, cloud writes."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from linebridge.commands.policy import RoleName
from linebridge.configbase import StrictModel
from linebridge.errors import ConfigError, InvalidArgument
from linebridge.model import Role
from linebridge.paths import compile_glob

# Sparkplug 3.0, Topics (group_id, edge_node_id): ids are UTF-8 strings without the MQTT wildcards and the topic separator.
_SPARKPLUG_ID = re.compile(r"^[^/+#]+$")


class DropPolicy(StrEnum):
    """What the outbox does when its disk budget is full."""

    DROP_OLDEST = "drop_oldest"
    REJECT_NEWEST = "reject_newest"


class TlsConfig(StrictModel):
    """TLS for an mqtts:// broker: the CA to trust and, for client certificates, our cert and key."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file go together (client certificate authentication)")
        return self


class OutboxConfig(StrictModel):
    """The on-disk store-and-forward queue."""

    path: str = "var/uplink-outbox.sqlite"
    # Payload bytes the outbox may hold; the policy applies beyond it.
    budget_bytes: int = Field(1 << 30, ge=1024)
    # Payloads older than this are dropped (and counted) even when the budget is not reached.
    max_age_seconds: float = Field(7 * 86400.0, gt=0)
    policy: DropPolicy = DropPolicy.DROP_OLDEST
    # A kill -9 loses at most this much of the newest data: appends are committed this often.
    commit_interval_seconds: float = Field(1.0, gt=0, le=60)


class UplinkConfig(StrictModel):
    """Sparkplug B over MQTT to the Industrial Cloud (off by default)."""

    enabled: bool = False
    # mqtt://host:port or mqtts://host:port (TLS).
    broker: str = "mqtt://127.0.0.1:1883"
    client_id: str = ""  # default: linebridge-<edge_node_id>
    keepalive_seconds: int = Field(30, ge=1, le=65535)
    # MQTT version: "3.1.1" or 5 (AWS IoT Core, HiveMQ and EMQX speak both).
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    # QoS of NDATA/DDATA. 0 is what Sparkplug 3.0 requires; 1 is outside the specification (for plants
    # whose broker policy asks for it). Births and deaths are QoS 0 either way.
    data_qos: Literal[0, 1] = 0
    username: str = ""
    password: str = ""
    tls: TlsConfig = Field(default_factory=TlsConfig)
    group_id: str = "linebridge"
    edge_node_id: str = ""  # default: bridge.id
    # When set, publish only while this Sparkplug host application is online (STATE topic).
    primary_host_id: str = ""
    # Report by exception: send a value only when it changed (beyond its deadband).
    report_by_exception: bool = True
    deadband: float = Field(0.0, ge=0)
    # Per-signal deadbands: full path glob ("robot-1/axes/*/actual_position") -> absolute deadband.
    deadbands: dict[str, float] = Field(default_factory=dict)
    # AWS IoT Core's limits are the defaults: 128 KB per payload, 100 publishes/s per connection.
    max_payload_bytes: int = Field(128 * 1024, ge=1024, le=256 * 1024 * 1024)
    max_publish_rate: float = Field(100.0, gt=0)
    # Longest a sample waits to fill its DDATA before the payload is sealed and queued.
    max_latency_seconds: float = Field(0.1, gt=0, le=60)
    # How often the audit chain head is checked and, when it moved, published as the node metric
    # `Audit/Head` (NDATA): an outside witness of the audit log, so a cut tail shows (docs/security.md).
    audit_head_interval_seconds: float = Field(60.0, gt=0)
    # QoS 1 publishes awaiting PUBACK at once.
    max_inflight: int = Field(64, ge=1, le=65535)
    reconnect_initial_seconds: float = Field(0.5, gt=0)
    reconnect_max_seconds: float = Field(30.0, gt=0)
    # The backoff starts over only after a connection stayed up this long (a flapping link backs off).
    reconnect_healthy_seconds: float = Field(30.0, gt=0)
    connect_timeout_seconds: float = Field(10.0, gt=0)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    # Which metrics cloud commands (DCMD) may write: device id glob -> signal path globs. Default: none.
    cloud_writable: dict[str, list[str]] = Field(default_factory=dict)
    # The role cloud commands act with (identity "sparkplug:<primary_host_id or group_id>"), checked
    # against each device's command policy like a gRPC caller's.
    command_role: RoleName = Role.OPERATOR

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"expected mqtt://HOST:PORT or mqtts://HOST:PORT, got {value!r}")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(f"bad port in {value!r}") from None
        return value

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol(cls, value: object) -> object:
        if value in (5, 5.0, "5", "5.0"):
            return "5"
        if value in (4, "4", "3.1.1"):
            return "3.1.1"
        raise ValueError(f'expected "3.1.1" or 5, got {value!r}')

    @field_validator("group_id", "edge_node_id", "primary_host_id")
    @classmethod
    def _sparkplug_id(cls, value: str) -> str:
        if value and not _SPARKPLUG_ID.match(value):
            raise ValueError("a Sparkplug id must not contain '/', '+' or '#'")
        return value

    @field_validator("deadbands")
    @classmethod
    def _deadbands(cls, value: dict[str, float]) -> dict[str, float]:
        for glob, band in value.items():
            _check_glob(glob)
            if band < 0:
                raise ValueError(f"deadband for {glob!r} must not be negative")
        return value

    @field_validator("cloud_writable")
    @classmethod
    def _writable(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for device, signals in value.items():
            for signal in signals:
                _check_glob(f"{device}/{signal}")
        return value

    @property
    def tls_enabled(self) -> bool:
        """Whether the broker URL asks for TLS (mqtts://)."""
        return urlsplit(self.broker).scheme == "mqtts"

    @property
    def host(self) -> str:
        """The broker's host name or address."""
        return urlsplit(self.broker).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """The broker's port (1883, or 8883 for mqtts://, when the URL names none)."""
        return urlsplit(self.broker).port or (8883 if self.tls_enabled else 1883)


def _check_glob(text: str) -> None:
    try:
        compile_glob(text)
    except InvalidArgument as exc:
        raise ValueError(str(exc)) from None


def with_broker(config: UplinkConfig, url: str) -> UplinkConfig:
    """The uplink enabled with another broker (`--mqtt URL`), or ConfigError naming what is wrong."""
    try:
        return UplinkConfig.model_validate({**config.model_dump(), "enabled": True, "broker": url})
    except ValueError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ") if hasattr(exc, "errors") else str(exc)
        raise ConfigError(f"--mqtt: {reason}") from None
