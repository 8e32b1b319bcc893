"""OPC UA application instance certificates: create once, reuse, and read the facts trust decisions need.

OPC 10000-6 §6.2.2 profiles an application instance certificate: RSA, SHA-256 signature, the
application's ApplicationUri as a SubjectAltName URI, its host names as DNS names, and key usages
for signing and key encipherment. The bridge (client) and the robot simulator (server) both make
theirs here.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_BITS = 2048  # the minimum all three policies accept (Basic256Sha256, Aes128/Aes256: 2048..4096)
VALIDITY = datetime.timedelta(days=730)
CLIENT_URI_PREFIX = "urn:linebridge:bridge:"
# Part 12 §F.1 folder layout: own/certs, own/private, trusted/certs, rejected/certs.
OWN_CERT = Path("own/certs/linebridge.der")
OWN_KEY = Path("own/private/linebridge.pem")
# One process may connect several devices at once on first start: create the pair only once.
_create_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """A private key and its certificate on disk, with the certificate's ApplicationUri and thumbprint."""

    cert_path: Path
    key_path: Path
    application_uri: str
    thumbprint: str


def client_application_uri() -> str:
    """The ApplicationUri a bridge on this host uses: urn:linebridge:bridge:<hostname>."""
    return CLIENT_URI_PREFIX + socket.gethostname()


def thumbprint(cert_der: bytes) -> str:
    """SHA-256 thumbprint of a DER certificate, upper-case hex with colons (as `openssl x509 -fingerprint`)."""
    digest = hashlib.sha256(cert_der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def first_certificate(data: bytes) -> bytes:
    """The leaf of a DER certificate chain (OPC 10000-6 §6.2.3 sends chains as concatenated DER)."""
    if len(data) < 2 or data[0] != 0x30:  # ASN.1 SEQUENCE
        raise ValueError("not a DER certificate")
    length = data[1]
    if length < 0x80:
        return data[: 2 + length]
    size = length & 0x7F
    return data[: 2 + size + int.from_bytes(data[2 : 2 + size], "big")]


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate from DER or PEM bytes."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(first_certificate(data))


def der_of(cert: x509.Certificate) -> bytes:
    """The DER encoding of `cert`."""
    return cert.public_bytes(serialization.Encoding.DER)


def application_uri_of(cert: x509.Certificate) -> str:
    """The first SubjectAltName URI of `cert` (its ApplicationUri), or "" if it has none."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else ""


def ensure_certificate(
    folder: Path, application_uri: str, common_name: str, hosts: tuple[str, ...] = ()
) -> CertificateFiles:
    """Load the key+certificate under `folder`, creating them first if missing (blocking: run in a thread)."""
    cert_path, key_path = folder / OWN_CERT, folder / OWN_KEY
    with _create_lock:
        if not cert_path.exists():
            _create(cert_path, key_path, application_uri, common_name, hosts or (socket.gethostname(),))
    cert = x509.load_der_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if (
        not isinstance(key, rsa.RSAPrivateKey)
        or key.public_key().public_numbers() != cert.public_key().public_numbers()
    ):
        raise ValueError(
            f"{key_path} is not the private key of {cert_path}; remove both to create a new pair"
        )
    return CertificateFiles(cert_path, key_path, application_uri_of(cert), thumbprint(der_of(cert)))


def _create(cert_path: Path, key_path: Path, uri: str, common_name: str, hosts: tuple[str, ...]) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    cert = self_signed(key, uri, common_name, hosts)
    for path in (cert_path, key_path):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # The key is created 0600 from the start (never world-readable, not even between write and chmod).
    _write_new(key_path, key_pem, 0o600)
    # The certificate is written last: its presence means the pair is complete.
    _write_new(cert_path, der_of(cert), 0o644)


def self_signed(
    key: rsa.RSAPrivateKey,
    uri: str,
    common_name: str,
    hosts: tuple[str, ...],
    not_before: datetime.datetime | None = None,
    validity: datetime.timedelta = VALIDITY,
) -> x509.Certificate:
    """A self-signed application instance certificate for `uri` and `hosts` (names or IP addresses)."""
    start = not_before or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)  # clock skew
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Linebridge"),
        ]
    )
    alt: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)]
    for host in dict.fromkeys(hosts):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=True,
        data_encipherment=True,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _write_new(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)  # the umask may have taken bits away from a 0644 certificate
    os.replace(tmp, path)
