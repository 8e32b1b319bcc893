"""A small certificate authority for a lab or a test rig: CA, server and client certificates (PEM).

Keys are ECDSA P-256 (fast to make, accepted by every gRPC TLS stack). Server certificates carry the
names clients dial as SubjectAltNames (RFC 6125 §6.4: clients check SANs, not the CN); client
certificates carry the client's name as CN, which the bridge maps to a role.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 825  # the CA/Browser Forum's old maximum; long enough for a lab, short enough to rotate
DEFAULT_SERVER_NAMES = ("localhost", "127.0.0.1")


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        """The certificate, parsed."""
        return x509.load_pem_x509_certificate(self.cert_pem)

    def save(self, cert_path: Path, key_path: Path) -> None:
        """Write both files; the key is readable by its owner only."""
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        cert_path.write_bytes(self.cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key_pem)
        os.chmod(key_path, 0o600)  # an existing file keeps its mode through O_CREAT

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> Issued:
        """A certificate and key read from PEM files."""
        return cls(cert_path.read_bytes(), key_path.read_bytes())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _validity(days: int, not_before: datetime.datetime | None) -> tuple[datetime.datetime, datetime.datetime]:
    start = not_before or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)  # clock skew
    return start, start + datetime.timedelta(days=days)


def make_ca(name: str = "Linebridge lab CA", days: int = CA_DAYS) -> Issued:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Linebridge"),
        ]
    )
    start, end = _validity(days, None)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _san(names: Sequence[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.UniformResourceIdentifier(name) if ":" in name else x509.DNSName(name))
    return out


def issue(
    ca: Issued,
    common_name: str,
    *,
    alt_names: Sequence[str] = (),
    client: bool = False,
    days: int = LEAF_DAYS,
    not_before: datetime.datetime | None = None,
) -> Issued:
    """A leaf certificate signed by `ca`, for a server or a client; `alt_names` become SANs (IP, URI or DNS)."""
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = ca.cert
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(days, not_before)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san(alt_names)), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


@dataclass(frozen=True, slots=True)
class CertDir:
    """Where `linebridge certs init` keeps its files."""

    root: Path

    @property
    def ca(self) -> tuple[Path, Path]:
        """Paths of the CA certificate and key."""
        return self.root / "ca.pem", self.root / "ca.key"

    @property
    def server(self) -> tuple[Path, Path]:
        """Paths of the server certificate and key."""
        return self.root / "server.pem", self.root / "server.key"

    def client(self, name: str) -> tuple[Path, Path]:
        """Paths of a client's certificate and key."""
        return self.root / "clients" / f"{name}.pem", self.root / "clients" / f"{name}.key"


def init_dir(root: Path, server_names: Sequence[str], clients: Sequence[str]) -> tuple[CertDir, bool]:
    """Create (or reuse) the CA in `root`, then issue the server and the named client certificates.

    Returns the layout and whether the CA was new. The server and client certificates are issued
    afresh every time; an existing CA is kept, so certificates it signed before stay valid.
    """
    layout = CertDir(root)
    root.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = layout.ca
    created = not (ca_cert.exists() and ca_key.exists())
    ca = make_ca() if created else Issued.load(ca_cert, ca_key)
    if created:
        ca.save(ca_cert, ca_key)
    names = list(dict.fromkeys([*DEFAULT_SERVER_NAMES, *server_names]))
    issue(ca, names[-1] if server_names else "linebridge", alt_names=names).save(*layout.server)
    for name in clients:
        issue(ca, name, client=True).save(*layout.client(name))
    return layout, created
