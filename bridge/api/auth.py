"""Who is calling and what each RPC needs: identities from certificates or tokens, roles per method.

A caller is identified, in this order, by
1. a bearer token (`authorization: Bearer <token>`) when `security.tokens_file` is set,
2. its client certificate when the server runs mutual TLS: `cn:<CN>`, then each `uri:<SAN URI>`,
   then each `dns:<SAN DNS>`; the first one listed under `security.identities` names it,
3. nothing: with no authentication configured the caller is `local` (a loopback peer) or
   `anonymous` (a remote one, only possible with --insecure) and is ADMIN, as before security
   existed; with authentication configured it is refused (UNAUTHENTICATED).
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from linebridge.api import pb
from linebridge.configbase import relative_to_config
from linebridge.errors import ConfigError
from linebridge.model import Identity, Role
from linebridge.security.config import SecurityConfig, ServerTls
from linebridge.security.tokens import TokenTable

_identity: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "linebridge_identity", default=None
)


def current_identity() -> Identity | None:
    """The caller of the RPC being served (set by the auth interceptor); None outside an RPC."""
    return _identity.get()


def set_identity(identity: Identity | None) -> contextvars.Token[Identity | None]:
    """Make `identity` the caller of the RPC running in this context; the token undoes it."""
    return _identity.set(identity)


def reset_identity(token: contextvars.Token[Identity | None]) -> None:
    """Restore the caller that was current before set_identity()."""
    _identity.reset(token)


def _methods(module: object, service: str, role: Role) -> dict[str, Role]:
    descriptor = module.DESCRIPTOR.services_by_name[service]  # type: ignore[attr-defined]
    return {f"/{descriptor.full_name}/{m.name}": role for m in descriptor.methods}


# The role each RPC needs. A method missing here needs ADMIN: a new RPC is closed until it is listed.
REQUIRED_ROLE: dict[str, Role] = {
    **_methods(pb.device, "DeviceService", Role.VIEWER),
    **_methods(pb.telemetry, "TelemetryService", Role.VIEWER),
    **_methods(pb.command, "CommandService", Role.VIEWER),
    **_methods(pb.bridge, "BridgeService", Role.VIEWER),
    **_methods(pb.transport, "TransportService", Role.VIEWER),
    "/linebridge.v1.CommandService/Execute": Role.OPERATOR,
    "/linebridge.v1.CommandService/Cancel": Role.OPERATOR,
    "/linebridge.v1.CommandService/Jog": Role.OPERATOR,
    "/linebridge.v1.BridgeService/ApproveDevice": Role.ADMIN,
    **_methods(pb.alarm, "AlarmService", Role.VIEWER),
    **_methods(pb.alarm, "EfficiencyService", Role.VIEWER),
    # Operators acknowledge and shelve; viewers read (issue 14).
    "/linebridge.v1.AlarmService/Acknowledge": Role.OPERATOR,
    "/linebridge.v1.AlarmService/Confirm": Role.OPERATOR,
    "/linebridge.v1.AlarmService/Shelve": Role.OPERATOR,
    "/linebridge.v1.AlarmService/Unshelve": Role.OPERATOR,
    "/linebridge.v1.EfficiencyService/SetPlannedBusyTime": Role.OPERATOR,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Role.VIEWER,
}
# Open to every caller that completed the transport handshake: liveness probes carry no identity.
OPEN_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


def required_role(method: str) -> Role | None:
    """The role `method` needs; None for the open health methods."""
    return None if method in OPEN_METHODS else REQUIRED_ROLE.get(method, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class AuthFailure(Exception):
    """A call that is refused before it reaches a servicer: the gRPC code and the reason."""

    code: grpc.StatusCode
    reason: str

    def __str__(self) -> str:
        return self.reason


def peer_is_loopback(peer: str) -> bool:
    """'ipv4:127.0.0.1:5000', 'ipv6:[::1]:5000' and 'unix:...' are on this host."""
    kind, _, rest = peer.partition(":")
    if kind == "unix":
        return True
    host = rest.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _texts(values: Sequence[bytes] | None) -> list[str]:
    return [v.decode("utf-8", "replace") for v in values or ()]


def certificate_names(auth_context: Mapping[str, Sequence[bytes]]) -> list[str]:
    """Identity keys a verified client certificate offers: cn:..., uri:..., dns:... in that order."""
    names = [f"cn:{cn}" for cn in _texts(auth_context.get("x509_common_name"))]
    names += [f"uri:{uri}" for uri in _texts(auth_context.get("peer_uri"))]
    names += [f"dns:{dns}" for dns in _texts(auth_context.get("peer_dns"))]
    return names


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    """The token of an `authorization: Bearer <token>` header; AuthFailure when the header is malformed."""
    for key, value in metadata or ():
        if key != "authorization":
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthFailure(grpc.StatusCode.UNAUTHENTICATED, "expected 'authorization: Bearer <token>'")
        return token.strip()
    return None


class Authenticator:
    """Turns what a call carries (peer certificate, metadata, peer address) into an Identity."""

    def __init__(self, config: SecurityConfig, base_dir: Path | None = None) -> None:
        self.config = config
        self.mtls = bool(config.tls.client_ca_file)
        self.tokens = (
            TokenTable.load(relative_to_config(config.tokens_file, base_dir)) if config.tokens_file else None
        )

    def identify(
        self,
        auth_context: Mapping[str, Sequence[bytes]],
        metadata: Sequence[tuple[str, str | bytes]] | None,
        peer: str,
    ) -> Identity:
        """The caller's identity and role; AuthFailure (UNAUTHENTICATED / PERMISSION_DENIED) otherwise."""
        token = bearer_token(metadata) if self.tokens is not None else None
        if token is not None:
            assert self.tokens is not None
            name = self.tokens.verify(token)
            if name is None:
                raise AuthFailure(grpc.StatusCode.UNAUTHENTICATED, "invalid bearer token")
            return self._mapped([f"token:{name}"], peer)
        if self.mtls:  # only a certificate the TLS layer verified against client_ca_file counts
            names = certificate_names(auth_context)
            if names:
                return self._mapped(names, peer)
        if self.config.authentication:
            raise AuthFailure(
                grpc.StatusCode.UNAUTHENTICATED,
                "no credentials: this bridge needs a client certificate or 'authorization: Bearer <token>'",
            )
        return Identity("local" if peer_is_loopback(peer) else "anonymous", Role.ADMIN, peer, "grpc")

    def _mapped(self, names: list[str], peer: str) -> Identity:
        for name in names:
            role = self.config.role_of(name)
            if role is not None:
                return Identity(name, role, peer, "grpc")
        raise AuthFailure(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{names[0]} has no role on this bridge (an admin can map it under security.identities)",
        )


def check_role(identity: Identity, method: str) -> None:
    """PERMISSION_DENIED (as AuthFailure) when the identity's role is below what `method` needs."""
    needed = required_role(method)
    if needed is not None and identity.role < needed:
        raise AuthFailure(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{identity.name} has role {identity.role.name.lower()}; "
            f"{short_name(method)} needs {needed.name.lower()}",
        )


def short_name(method: str) -> str:
    """'/linebridge.v1.CommandService/Execute' -> 'CommandService.Execute'."""
    service, _, name = method.strip("/").rpartition("/")
    return f"{service.rpartition('.')[2]}.{name}"


def server_credentials(tls: ServerTls, base_dir: Path | None) -> grpc.ServerCredentials | None:
    """TLS credentials of the server (mutual when client_ca_file is set); None without TLS."""
    if not tls.enabled:
        return None

    def read(field: str, path: str) -> bytes:
        full = relative_to_config(path, base_dir)
        try:
            return full.read_bytes()
        except OSError as exc:
            raise ConfigError(f"security.tls.{field}: cannot read {full}: {exc.strerror}") from None

    pair = (read("key_file", tls.key_file), read("cert_file", tls.cert_file))
    ca = read("client_ca_file", tls.client_ca_file) if tls.client_ca_file else None
    return grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=ca is not None)
