"""Options of the web console, validated before anything binds: listen address, TLS, the bridge."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, field_validator, model_validator


class ConsoleOptions(BaseModel):
    """Where the console listens and which bridge it talks to (the CLI's --ca/--cert/--key/--token)."""

    model_config = ConfigDict(extra="forbid")

    target: str = "127.0.0.1:50051"
    listen: str = "127.0.0.1:8080"
    tls_cert: str = ""  # the console's own HTTPS certificate (PEM file), needed off loopback
    tls_key: str = ""
    ca: str | None = None  # PEM bytes/paths for the gRPC channel, as `linebridge devices` takes them
    cert: str | None = None
    key: str | None = None
    token: str | None = None  # used for sessions that log in without a token, on a loopback console only
    frame_hz: float = 60.0  # live data goes out at most this often per WebSocket (one message per frame)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"listen: expected HOST:PORT, got {value!r}")
        return value

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> ConsoleOptions:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together (the console's certificate and its key)")
        if not self.loopback and not self.tls_cert:
            raise ValueError(
                f"listen: {self.listen} is not a loopback address; the console serves it only over HTTPS "
                "(give --tls-cert and --tls-key)"
            )
        return self

    @property
    def host(self) -> str:
        """The host part of `listen`, without IPv6 brackets."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """The port part of `listen` (0 = any free port)."""
        return int(self.listen.rpartition(":")[2])

    @property
    def loopback(self) -> bool:
        """Whether `listen` is a loopback address (localhost counts)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def https(self) -> bool:
        """Whether the console serves HTTPS."""
        return bool(self.tls_cert)
