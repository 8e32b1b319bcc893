"""The bridge's trust list for OPC UA server certificates: a folder of DER/PEM files, optional trust on first use.

A server is trusted when the exact certificate it presents (compared by SHA-256 thumbprint) is in the
trust folder. A certificate for an ApplicationUri that already has a different trusted certificate is
refused as *changed*, even with trust on first use: that is the case TOFU exists to catch. An unknown
certificate is copied to the rejected folder (OPC 10000-12 §F.1 layout) so an administrator can move
it into the trust folder after checking its thumbprint.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from linebridge.drivers.base import DeviceError
from linebridge.drivers.opcua.certs import application_uri_of, der_of, load_certificate, thumbprint

CERT_SUFFIXES = frozenset({".der", ".cer", ".crt", ".pem"})
_FILE_JUNK = re.compile(r"[^A-Za-z0-9._-]+")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrustedCertificate:
    """One certificate file of the trust folder."""

    path: Path
    application_uri: str
    thumbprint: str


class TrustList:
    """Decides whether a server certificate may be used; blocking file I/O, so call it from a thread."""

    def __init__(self, trust_dir: Path, rejected_dir: Path, trust_on_first_use: bool = False) -> None:
        self.trust_dir = trust_dir
        self.rejected_dir = rejected_dir
        self.trust_on_first_use = trust_on_first_use

    def entries(self) -> list[TrustedCertificate]:
        """Every readable certificate in the trust folder (unreadable files are skipped with a warning)."""
        if not self.trust_dir.is_dir():
            return []
        found = []
        for path in sorted(self.trust_dir.iterdir()):
            if path.suffix.lower() not in CERT_SUFFIXES or not path.is_file():
                continue
            try:
                cert = load_certificate(path.read_bytes())
            except (OSError, ValueError) as exc:
                log.warning("ignoring %s in the OPC UA trust list: %s", path, exc)
                continue
            found.append(TrustedCertificate(path, application_uri_of(cert), thumbprint(der_of(cert))))
        return found

    def check(self, cert_der: bytes, server_uri: str) -> str:
        """Return how `cert_der` is trusted ("trusted" or "trusted on first use"); DeviceError if it is not.

        `server_uri` is the ApplicationUri the server's endpoint description claims.
        """
        try:
            cert = load_certificate(cert_der)
        except ValueError as exc:
            raise DeviceError(f"OPC UA server {server_uri} sent an unreadable certificate: {exc}") from None
        cert_uri = application_uri_of(cert)
        print_ = thumbprint(der_of(cert))
        _check_identity(cert, cert_uri, server_uri, print_)
        entries = self.entries()
        if any(e.thumbprint == print_ for e in entries):
            return "trusted"
        changed = [e for e in entries if e.application_uri == cert_uri]
        if changed:
            raise DeviceError(
                f"OPC UA server {cert_uri} presented a CHANGED certificate (SHA-256 {print_}); the trusted one "
                f"is {changed[0].path} (SHA-256 {changed[0].thumbprint}). If the server was really re-keyed, "
                f"replace that file with the new certificate; otherwise something is impersonating the server"
            )
        if self.trust_on_first_use:
            path = self._store(self.trust_dir, cert_uri, print_, der_of(cert))
            log.warning(
                "trusting OPC UA server %s on first use (SHA-256 %s), stored as %s", cert_uri, print_, path
            )
            return "trusted on first use"
        rejected = self._store(self.rejected_dir, cert_uri, print_, der_of(cert))
        raise DeviceError(
            f"OPC UA server {cert_uri} is not trusted: its certificate (SHA-256 {print_}) is not in the trust "
            f"list {self.trust_dir}. After checking the thumbprint on the server, copy {rejected} into "
            f"{self.trust_dir} to trust it, or set trust_on_first_use: true"
        )

    @staticmethod
    def _store(folder: Path, uri: str, print_: str, data: bytes) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        name = _FILE_JUNK.sub("_", uri.removeprefix("urn:"))[:80] or "server"
        path = folder / f"{name} [{print_.replace(':', '')[:16]}].der"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # two devices of one server may store it at once: whole files only
        return path


def _check_identity(cert: x509.Certificate, cert_uri: str, server_uri: str, print_: str) -> None:
    """OPC 10000-4 §6.1.3 checks that hold whatever the trust list says: validity period and ApplicationUri."""
    now = datetime.datetime.now(datetime.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise DeviceError(
            f"OPC UA server {server_uri} presented a certificate (SHA-256 {print_}) valid only from "
            f"{cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}: BadCertificateTimeInvalid"
        )
    if not cert_uri:
        raise DeviceError(
            f"OPC UA server {server_uri} presented a certificate (SHA-256 {print_}) without an "
            "ApplicationUri in its SubjectAltName: BadCertificateUriInvalid"
        )
    if server_uri and cert_uri != server_uri:
        raise DeviceError(
            f"OPC UA server {server_uri} presented a certificate for {cert_uri} (SHA-256 {print_}): "
            "BadCertificateUriInvalid"
        )
