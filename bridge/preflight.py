"""Start checks that need no port and no device: BridgeApp runs them, and so does `run --check`."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from linebridge.api.auth import Authenticator, server_credentials
from linebridge.api.server import check_exposure
from linebridge.configbase import relative_to_config
from linebridge.devices.approval import Approvals
from linebridge.errors import ConfigError
from linebridge.uplink.sparkplug import ssl_context

if TYPE_CHECKING:
    from linebridge.config import Config
    from linebridge.devices.catalog import DriverCatalog


def preflight(
    config: Config, drivers: DriverCatalog, insecure: bool = False, source: str = "config"
) -> list[str]:
    """Every check start makes short of binding ports and connecting; ConfigError naming the field, else warnings."""
    drivers.check(config, source)  # driver names, options and endpoint forms
    sec = config.security
    warnings = check_exposure(
        config.grpc.address, insecure or config.grpc.insecure, sec.tls.enabled, sec.authentication
    )
    server_credentials(sec.tls, config.base_dir)  # TLS key, certificate and CA files readable
    Authenticator(sec, config.base_dir)  # tokens file readable and well-formed
    if config.audit.enabled:
        writable_folder("audit.path", config.audit.directory(config.base_dir))
    if config.uplink.enabled:
        writable_file("uplink.outbox.path", relative_to_config(config.uplink.outbox.path, config.base_dir))
        _uplink_tls(config)
    if config.discovery.approvals_file:
        path = relative_to_config(config.discovery.approvals_file, config.base_dir)
        writable_file("discovery.approvals_file", path)
        Approvals(config.discovery.auto_approve, path)  # an existing file must be readable and well-formed
    return warnings


def _uplink_tls(config: Config) -> None:
    """The uplink's TLS files load as they will at start (CA, client certificate and key)."""
    try:
        ssl_context(config.uplink)
    except (OSError, ssl.SSLError) as exc:
        tls = config.uplink.tls
        fields = [f"uplink.tls.{f}" for f in ("ca_file", "cert_file", "key_file") if getattr(tls, f)]
        raise ConfigError(
            f"{' / '.join(fields) or 'uplink.tls'}: cannot load: {getattr(exc, 'strerror', None) or exc}"
        ) from None


def writable_folder(field: str, path: Path) -> None:
    """ConfigError naming `field` unless `path` is (or can be created as) a folder this process can write."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{field}: cannot use {path}: {existing} is not a folder")
    try:  # a real write: permissions, read-only mounts and ACLs all count (os.access ignores some)
        with tempfile.TemporaryFile(dir=existing, prefix=".linebridge-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{field}: cannot write in {existing} (for {path}): {exc.strerror}") from None


def writable_file(field: str, path: Path) -> None:
    """ConfigError naming `field` unless `path` is a writable file or can be created as one."""
    if path.exists():
        if path.is_dir():
            raise ConfigError(f"{field}: {path} is a folder, expected a file")
        try:
            with path.open("ab"):
                pass
        except OSError as exc:
            raise ConfigError(f"{field}: cannot write {path}: {exc.strerror}") from None
        return
    writable_folder(field, path.parent)
