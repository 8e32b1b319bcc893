"""Options of the opcua driver: browsing, subscription timing, and transport security.

Security (all optional; the defaults connect without security, as before):

* ``security_policy``: ``None`` | ``Basic256Sha256`` | ``Aes128_Sha256_RsaOaep`` | ``Aes256_Sha256_RsaPss``
  and ``security_mode``: ``None`` | ``Sign`` | ``SignAndEncrypt``. A policy needs Sign or
  SignAndEncrypt, and those need a policy.
* ``certificate_dir``: where the bridge keeps its client key and certificate (created on first
  secured connect, reused afterwards). Default ``$LINEBRIDGE_STATE_DIR/pki``, else
  ``$XDG_STATE_HOME/linebridge/pki``, else ``~/.local/state/linebridge/pki``.
* ``trust_dir``: trusted server certificates (DER or PEM files). Default ``<certificate_dir>/trusted/certs``;
  refused certificates land in ``<certificate_dir>/rejected/certs``.
* ``trust_on_first_use``: store an unknown server's certificate on first connect and trust it
  afterwards; a changed certificate for the same ApplicationUri is still refused.
* ``username`` with ``password`` (kept secret in logs and reprs) or ``password_env`` (the name of an
  environment variable holding it). Needs a security policy, so the password never crosses the
  network unprotected.

Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from asyncua import ua
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from linebridge.drivers.base import DriverOptions, config_dir, relative_to_config

SecurityPolicyName = Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
SecurityModeName = Literal["None", "Sign", "SignAndEncrypt"]


def default_state_dir() -> Path:
    """The per-user folder Linebridge keeps state in ($LINEBRIDGE_STATE_DIR, XDG state home, ~/.local/state)."""
    explicit = os.environ.get("LINEBRIDGE_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "linebridge"


class OpcUaOptions(DriverOptions):
    """Options of the opcua driver; the defaults suit an mDNS-discovered OPC 40010 robot without security."""

    browse_root: str = Field(
        "i=85", description="NodeId to browse from; 'Objects' or i=85 is the Objects folder"
    )
    max_browse_depth: int = Field(12, ge=1, le=64, description="levels below browse_root")
    max_nodes: int = Field(20_000, ge=1, le=1_000_000, description="stop browsing after this many nodes")
    request_timeout: float = Field(4.0, gt=0, le=300, description="seconds per OPC UA request")
    publishing_interval: float = Field(0.1, gt=0, le=60, description="subscription publishing interval, s")
    keepalive_interval: float = Field(1.0, gt=0, le=600, description="subscription keep-alive, s")
    alarms: bool = Field(True, description="subscribe to Alarms & Conditions events (OPC UA Part 9)")
    # asyncua probes the server this often and gives the probe as long to answer; a lost socket is
    # noticed at once anyway, so this only bounds how long a silently dead link goes unnoticed.
    watchdog_interval: float = Field(2.0, gt=0, le=60, description="connection probe period, s")
    session_timeout: float = Field(60.0, ge=1, le=3600, description="server-side session timeout, s")
    security_policy: SecurityPolicyName = Field("None", description="OPC UA security policy")
    security_mode: SecurityModeName = Field("None", description="message security mode")
    certificate_dir: Path | None = Field(
        None, description="client key+certificate folder (default: state dir/pki)"
    )
    trust_dir: Path | None = Field(
        None, description="trusted server certificates (default: certificate_dir/trusted/certs)"
    )
    trust_on_first_use: bool = Field(
        False, description="trust an unknown server certificate once, then pin it"
    )
    username: str | None = Field(None, min_length=1, description="user name for the session")
    password: SecretStr | None = Field(None, description="password for username")
    password_env: str | None = Field(
        None, min_length=1, description="environment variable holding the password"
    )

    @field_validator("browse_root")
    @classmethod
    def _parse_root(cls, value: str) -> str:
        if value.strip().lower() == "objects":
            return "i=85"
        try:
            ua.NodeId.from_string(value)
        except Exception:
            raise ValueError(
                f"expected a NodeId such as 'i=85' or 'ns=2;s=Robot' (or 'Objects'), got {value!r}"
            ) from None
        return value

    @field_validator("certificate_dir", "trust_dir")
    @classmethod
    def _resolve(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        return relative_to_config(value, config_dir(info))

    @model_validator(mode="after")
    def _check_security(self) -> OpcUaOptions:
        if self.security_policy != "None" and self.security_mode == "None":
            raise ValueError(
                f"security_policy {self.security_policy} needs security_mode Sign or SignAndEncrypt"
            )
        if self.security_policy == "None" and self.security_mode != "None":
            raise ValueError(
                f"security_mode {self.security_mode} needs a security_policy: Basic256Sha256, "
                "Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss"
            )
        if self.password is not None and self.password_env is not None:
            raise ValueError("give password or password_env, not both")
        if self.username is None and (self.password is not None or self.password_env is not None):
            raise ValueError("password/password_env given without username")
        if self.username is not None and self.password is None and self.password_env is None:
            raise ValueError(f"username {self.username!r} needs password or password_env")
        if self.security_policy == "None" and (self.username is not None or self.trust_on_first_use):
            raise ValueError(
                "username/password and trust_on_first_use need a security_policy and security_mode: "
                "without them the password would cross the network unprotected"
            )
        return self

    @property
    def secured(self) -> bool:
        """True when a security policy (and so certificates) is in use."""
        return self.security_policy != "None"

    def pki_dir(self) -> Path:
        """The folder holding the client certificate, resolved now (the state dir may come from the env)."""
        return self.certificate_dir or default_state_dir() / "pki"

    def trusted_dir(self) -> Path:
        """The trust folder for server certificates."""
        return self.trust_dir or self.pki_dir() / "trusted" / "certs"

    def resolve_password(self) -> str | None:
        """The password, from the option or the environment variable it names; ValueError if that is unset."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_env is None:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ValueError(f"password_env names {self.password_env}, which is not set")
        return value
