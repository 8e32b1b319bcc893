"""Secure channel setup for the OPC UA client: choose the endpoint, vet the server certificate, load our own.

Order matters (OPC 10000-4 §5.4, §6.1.3): GetEndpoints runs on an unsecured channel that carries
no credentials; the server certificate it lists must pass the trust list before the secured
OpenSecureChannel is sent, and the user's password goes out only inside that channel, encrypted
to the very certificate that was vetted (asyncua refuses a session whose certificate differs).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from asyncua import Client, ua
from asyncua.crypto import security_policies as sp

from linebridge.drivers.base import DeviceError, InvalidArgument
from linebridge.drivers.opcua.certs import (
    CertificateFiles,
    client_application_uri,
    ensure_certificate,
    first_certificate,
    thumbprint,
)
from linebridge.drivers.opcua.options import OpcUaOptions
from linebridge.drivers.opcua.trust import TrustList
from linebridge.drivers.tasks import bounded

# Config names -> asyncua policy classes; the names are the URI fragments of OPC 10000-7 policies.
POLICIES: dict[str, type[sp.SecurityPolicy]] = {
    "None": sp.SecurityPolicyNone,
    "Basic256Sha256": sp.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": sp.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": sp.SecurityPolicyAes256Sha256RsaPss,
}
MODES: dict[str, ua.MessageSecurityMode] = {
    "None": ua.MessageSecurityMode.None_,
    "Sign": ua.MessageSecurityMode.Sign,
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}
# ActivateSession results that mean "these credentials are not accepted" (OPC 10000-4 §5.6.3).
_USER_REFUSED = frozenset(
    {
        ua.StatusCodes.BadUserAccessDenied,
        ua.StatusCodes.BadIdentityTokenInvalid,
        ua.StatusCodes.BadIdentityTokenRejected,
        ua.StatusCodes.BadUserSignatureInvalid,
    }
)
# OpenSecureChannel/CreateSession results that mean "the server does not accept the bridge's certificate".
_CERT_REFUSED = frozenset(
    {
        ua.StatusCodes.BadCertificateUntrusted,
        ua.StatusCodes.BadSecurityChecksFailed,
        ua.StatusCodes.BadCertificateInvalid,
        ua.StatusCodes.BadCertificateUriInvalid,
        ua.StatusCodes.BadCertificateTimeInvalid,
        ua.StatusCodes.BadCertificateRevoked,
        ua.StatusCodes.BadCertificateUseNotAllowed,
        ua.StatusCodes.BadCertificateHostNameInvalid,
    }
)
_TOKEN_NAMES = {
    ua.UserTokenType.Anonymous: "Anonymous",
    ua.UserTokenType.UserName: "UserName",
    ua.UserTokenType.Certificate: "Certificate",
    ua.UserTokenType.IssuedToken: "IssuedToken",
}


@dataclass(frozen=True, slots=True)
class SecuritySetup:
    """The endpoint chosen for a connection and how its certificate was trusted."""

    server_uri: str
    server_name: str
    label: str  # "Basic256Sha256/SignAndEncrypt"
    user: str | None = None
    server_thumbprint: str = ""
    trust: str = ""
    client_certificate: CertificateFiles | None = None


def policy_label(policy_uri: str, mode: ua.MessageSecurityMode) -> str:
    """ "Basic256Sha256/SignAndEncrypt" for a policy URI and a mode."""
    return f"{policy_uri.rsplit('#', 1)[-1]}/{mode.name.rstrip('_')}"


async def prepare(client: Client, options: OpcUaOptions, timeout: float) -> SecuritySetup:
    """Choose the endpoint `options` ask for and, when secured, vet its certificate and arm `client`."""
    try:
        password = options.resolve_password()
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    endpoints = await bounded(client.connect_and_get_server_endpoints(), timeout)
    endpoint = choose_endpoint(endpoints, options)
    server = endpoint.Server
    setup = SecuritySetup(
        server.ApplicationUri or "",
        server.ApplicationName.Text or "",
        f"{options.security_policy}/{options.security_mode}",
        options.username,
    )
    if not options.secured:
        return setup
    if not endpoint.ServerCertificate:
        raise DeviceError(f"OPC UA server {setup.server_uri} lists {setup.label} but sends no certificate")
    try:
        cert_der = first_certificate(endpoint.ServerCertificate)
    except ValueError as exc:
        raise DeviceError(f"OPC UA server {setup.server_uri} sent an unreadable certificate: {exc}") from None
    trust_list = TrustList(
        options.trusted_dir(), options.pki_dir() / "rejected" / "certs", options.trust_on_first_use
    )
    try:
        trust = await asyncio.to_thread(trust_list.check, cert_der, setup.server_uri)
    except OSError as exc:  # an unreadable trust folder is a setup fault, not an offline device
        raise DeviceError(f"cannot use the OPC UA trust list {trust_list.trust_dir}: {exc}") from None
    own = await asyncio.to_thread(client_certificate, options)
    client.application_uri = own.application_uri  # must equal the URI in our certificate (Part 4 §5.6.2)
    await client.set_security(
        POLICIES[options.security_policy],
        own.cert_path,
        own.key_path,
        server_certificate=cert_der,
        mode=MODES[options.security_mode],
    )
    if options.username is not None and password is not None:
        client.set_user(options.username)
        client.set_password(password)
    return SecuritySetup(
        setup.server_uri, setup.server_name, setup.label, options.username, thumbprint(cert_der), trust, own
    )


def client_certificate(options: OpcUaOptions) -> CertificateFiles:
    """The bridge's client certificate under certificate_dir, created on first use (blocking)."""
    folder = options.pki_dir()
    try:
        return ensure_certificate(
            folder, client_application_uri(), f"Linebridge bridge@{socket.gethostname()}"
        )
    except (OSError, ValueError) as exc:
        raise DeviceError(f"cannot use the OPC UA client certificate in {folder}: {exc}") from None


def choose_endpoint(
    endpoints: Sequence[ua.EndpointDescription], options: OpcUaOptions
) -> ua.EndpointDescription:
    """The endpoint with the configured policy and mode that takes the configured identity; DeviceError if none."""
    policy_uri, mode = POLICIES[options.security_policy].URI, MODES[options.security_mode]
    usable = [e for e in endpoints if e.EndpointUrl.startswith("opc.tcp")]
    server_uri = usable[0].Server.ApplicationUri if usable else "(no opc.tcp endpoint)"
    match = next((e for e in usable if e.SecurityPolicyUri == policy_uri and e.SecurityMode == mode), None)
    if match is None:
        offers = ", ".join(dict.fromkeys(policy_label(e.SecurityPolicyUri, e.SecurityMode) for e in usable))
        raise DeviceError(
            f"OPC UA server {server_uri} does not offer {policy_label(policy_uri, mode)}; "
            f"it offers: {offers or 'nothing over opc.tcp'}. Set security_policy and "
            "security_mode to one of these"
        )
    wanted = ua.UserTokenType.Anonymous if options.username is None else ua.UserTokenType.UserName
    tokens = [t.TokenType for t in match.UserIdentityTokens or []]
    if tokens and wanted not in tokens:
        takes = ", ".join(_TOKEN_NAMES.get(t, str(t)) for t in tokens)
        hint = (
            "remove username"
            if wanted != ua.UserTokenType.Anonymous
            else (
                "set username and password"
                if options.secured
                else "set a security policy, username and password"
            )
        )
        raise DeviceError(
            f"OPC UA server {server_uri} does not accept {_TOKEN_NAMES[wanted]} sessions on "
            f"{policy_label(policy_uri, mode)}; it takes: {takes} ({hint})"
        )
    return match


@contextlib.contextmanager
def explain_refusals(setup: SecuritySetup) -> Iterator[None]:
    """Turn the server's refusal of our certificate or credentials into a DeviceError saying which and why."""
    try:
        yield
    except ua.UaStatusCodeError as exc:
        code = exc.code if isinstance(exc.code, int) else None
        name = ua.StatusCode(code).name if code is not None else type(exc).__name__
        if code in _USER_REFUSED:
            who = f"user {setup.user!r}" if setup.user else "anonymous access"
            raise DeviceError(f"OPC UA server {setup.server_uri} refused {who}: {name}") from exc
        own = setup.client_certificate
        if code in _CERT_REFUSED and own is not None:
            raise DeviceError(
                f"OPC UA server {setup.server_uri} refused the bridge's certificate: {name}. Add {own.cert_path} "
                f"(SHA-256 {own.thumbprint}) to the server's trusted clients"
            ) from exc
        raise
