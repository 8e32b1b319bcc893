"""Config models of the `security:` section, the gRPC limits and the discovery approval rules."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from linebridge.configbase import StrictModel
from linebridge.model import Role

# Identity keys in `security.identities`: how a caller was recognised, then its name.
IDENTITY_KEY = re.compile(r"^(cn|uri|dns|token):\S.*$")
ROLE_NAMES = {"viewer": Role.VIEWER, "operator": Role.OPERATOR, "admin": Role.ADMIN}


class ServerTls(StrictModel):
    """TLS of the gRPC server; with client_ca_file every client must present a certificate it signed."""

    cert_file: str = ""
    key_file: str = ""
    # gRPC Python either requires and verifies client certificates or does not ask for them at all
    # (there is no "verify if offered"), so a CA here means mutual TLS for every connection.
    client_ca_file: str = ""

    @model_validator(mode="after")
    def _complete(self) -> ServerTls:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file go together (the server's certificate and its key)")
        if self.client_ca_file and not self.cert_file:
            raise ValueError("client_ca_file needs cert_file and key_file: mutual TLS is TLS first")
        return self

    @property
    def enabled(self) -> bool:
        """Whether the server uses TLS (a certificate is configured)."""
        return bool(self.cert_file)


class SecurityConfig(StrictModel):
    """Who may call the gRPC API and with which role."""

    tls: ServerTls = Field(default_factory=ServerTls)
    # Lines "NAME sha256:<64 hex>"; `linebridge token new NAME --file FILE` appends one.
    tokens_file: str = ""
    # "cn:cell-hmi": operator, "uri:spiffe://plant/mes": viewer, "token:mes": viewer, ...
    # An authenticated caller that is not listed here has no role and is denied.
    identities: dict[str, str] = Field(default_factory=dict)

    @field_validator("identities")
    @classmethod
    def _identities(cls, value: dict[str, str]) -> dict[str, str]:
        for key, role in value.items():
            if not IDENTITY_KEY.match(key):
                raise ValueError(
                    f"identity {key!r}: expected 'cn:NAME', 'uri:URI', 'dns:NAME' or 'token:NAME'"
                )
            if role not in ROLE_NAMES:
                raise ValueError(f"identity {key!r}: role {role!r} is not one of {', '.join(ROLE_NAMES)}")
        return value

    @property
    def authentication(self) -> bool:
        """True when callers must prove who they are (client certificates or bearer tokens)."""
        return bool(self.tls.client_ca_file or self.tokens_file)

    def role_of(self, identity: str) -> Role | None:
        """The configured role of an identity key, or None."""
        role = self.identities.get(identity)
        return ROLE_NAMES[role] if role is not None else None


class GrpcLimits(StrictModel):
    """What one client may take from the gRPC server; beyond it: RESOURCE_EXHAUSTED."""

    # HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection; further calls wait at the client.
    max_concurrent_streams: int = Field(64, ge=1)
    # Open Subscribe and WatchDevices streams per client (an identity, or a connection when anonymous).
    max_subscriptions_per_client: int = Field(32, ge=1)
    # Open streams of unauthenticated callers per peer address, whatever their connections: one local
    # process cannot take every slot of telemetry.max_subscriptions by opening many connections.
    max_subscriptions_per_address: int = Field(64, ge=1)
    max_paths_per_subscription: int = Field(256, ge=1)  # also the limit of paths in one Read
    # Keepalive: the server pings idle connections to find dead clients ...
    keepalive_time_seconds: float = Field(60.0, gt=0)
    keepalive_timeout_seconds: float = Field(20.0, gt=0)
    # ... and sends GOAWAY (ENHANCE_YOUR_CALM, "too_many_pings") to a client that pings more often
    # than this, more than max_ping_strikes times (gRPC keepalive spec A8).
    min_ping_interval_seconds: float = Field(10.0, ge=0)
    max_ping_strikes: int = Field(2, ge=0)


class ApprovalRule(StrictModel):
    """Auto-approve mDNS services that match every field given (globs, case-sensitive)."""

    service_type: str = ""  # "_opcua-tcp._tcp" or "_opcua-tcp._tcp.local."
    name: str = ""  # the mDNS instance name, e.g. "robot-*"
    txt: dict[str, str] = Field(default_factory=dict)  # TXT key -> glob its value must match

    @model_validator(mode="after")
    def _something(self) -> ApprovalRule:
        if not (self.service_type or self.name or self.txt):
            raise ValueError(
                "an auto_approve rule needs service_type, name or txt (name: '*' approves everything)"
            )
        return self

    @field_validator("txt")
    @classmethod
    def _txt_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.lower(): v for k, v in value.items()}  # TXT keys are case-insensitive (RFC 6763 §6.4)
