"""Security for the robot simulator: its own certificate, the policies it offers, its users, trusted clients."""

from __future__ import annotations

import asyncio
import hmac
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User, UserRole
from cryptography import x509

from linebridge.drivers.opcua.certs import CertificateFiles, der_of, ensure_certificate, thumbprint
from linebridge.drivers.opcua.trust import TrustList

ALL_POLICIES = ("Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss")
ALL_MODES = ("Sign", "SignAndEncrypt")
# (policy name, mode) -> asyncua's endpoint type; the table is the whole of what the simulator offers.
_ENDPOINT_TYPES: Mapping[tuple[str, str], ua.SecurityPolicyType] = {
    ("Basic256Sha256", "Sign"): ua.SecurityPolicyType.Basic256Sha256_Sign,
    ("Basic256Sha256", "SignAndEncrypt"): ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ("Aes128_Sha256_RsaOaep", "Sign"): ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    ("Aes128_Sha256_RsaOaep", "SignAndEncrypt"): ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    ("Aes256_Sha256_RsaPss", "Sign"): ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    ("Aes256_Sha256_RsaPss", "SignAndEncrypt"): ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
}


@dataclass(frozen=True)
class SimSecurity:
    """How a simulator secures its endpoints; every (policy, mode) pair given is offered."""

    cert_dir: Path  # own/certs + own/private; the certificate is created on first start
    policies: tuple[str, ...] = ALL_POLICIES
    modes: tuple[str, ...] = ALL_MODES
    users: Mapping[str, str] = field(default_factory=dict)  # name -> password; empty: anonymous sessions
    trusted_clients: Path | None = None  # folder of client certificates; None accepts any client
    allow_none: bool = False  # also offer the unsecured endpoint

    def __post_init__(self) -> None:
        unknown = [p for p in self.policies if p not in ALL_POLICIES] + [
            m for m in self.modes if m not in ALL_MODES
        ]
        if unknown or not self.policies or not self.modes:
            raise ValueError(f"unknown or missing security policy/mode: {unknown or 'none given'}")

    def endpoint_types(self) -> list[ua.SecurityPolicyType]:
        """The asyncua endpoint types to offer, most secure mode first."""
        offered = [_ENDPOINT_TYPES[(p, m)] for p in self.policies for m in self.modes]
        return offered + ([ua.SecurityPolicyType.NoSecurity] if self.allow_none else [])


class SimUserManager:
    """Checks user names and passwords, and records every attempt so tests can see what reached the server."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = dict(users)
        self.attempts: list[tuple[str | None, bool]] = []

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        """asyncua's user manager hook: a User when the credentials match, None to refuse."""
        if not self._users:
            accepted = True  # no users configured: anonymous robot, as without security
        else:
            expected = self._users.get(username or "")
            accepted = expected is not None and hmac.compare_digest(
                expected.encode(), (password or "").encode()
            )
        self.attempts.append((username, accepted))
        return User(role=UserRole.User, name=username) if accepted else None


async def secure_server(
    server: Server, security: SimSecurity, application_uri: str, name: str, host: str
) -> tuple[CertificateFiles, SimUserManager]:
    """Load (or create) the server certificate and configure endpoints, identity tokens and users."""
    hosts = tuple(dict.fromkeys((host, "localhost", socket.gethostname())))
    own = await asyncio.to_thread(
        ensure_certificate, security.cert_dir, application_uri, f"Linebridge robot simulator {name}", hosts
    )
    if own.application_uri != application_uri:
        raise ValueError(
            f"{own.cert_path} is the certificate of {own.application_uri}, not {application_uri}; "
            "give each simulated robot its own certificate folder"
        )
    await server.load_certificate(str(own.cert_path))
    await server.load_private_key(str(own.key_path))
    server.set_security_policy(security.endpoint_types())
    server.set_identity_tokens([ua.UserNameIdentityToken] if security.users else [ua.AnonymousIdentityToken])
    users = SimUserManager(security.users)
    server.iserver.set_user_manager(users)  # type: ignore[arg-type]  # duck-typed by asyncua
    if security.trusted_clients is not None:
        server.set_certificate_validator(_client_validator(security.trusted_clients))
    return own, users


def _client_validator(folder: Path) -> Any:
    """A CreateSession hook refusing client certificates that are not in `folder` (BadCertificateUntrusted)."""
    trust = TrustList(folder, folder)

    async def validate(cert: x509.Certificate, _app: ua.ApplicationDescription) -> None:
        trusted = await asyncio.to_thread(trust.entries)
        if thumbprint(der_of(cert)) not in {t.thumbprint for t in trusted}:
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

    return validate
