"""The `security:` section and the identity rules, without a network: clear errors, who is local."""

from __future__ import annotations

import grpc
import pytest

from linebridge.api.auth import Authenticator, AuthFailure, certificate_names, peer_is_loopback
from linebridge.app import BridgeApp
from linebridge.errors import ConfigError
from linebridge.model import Role
from linebridge.security.config import SecurityConfig
from tests.conftest import make_config


@pytest.mark.parametrize(
    ("security", "message"),
    [
        (
            {"identities": {"CN=cell-hmi": "operator"}},
            "expected 'cn:NAME', 'uri:URI', 'dns:NAME' or 'token:NAME'",
        ),
        (
            {"identities": {"cn:cell-hmi": "superuser"}},
            "role 'superuser' is not one of viewer, operator, admin",
        ),
        ({"tls": {"cert_file": "/x.pem"}}, "cert_file and key_file go together"),
        ({"tls": {"client_ca_file": "/ca.pem"}}, "client_ca_file needs cert_file and key_file"),
        ({"tls": {"require_client_cert": True}}, "unknown field"),
    ],
)
def test_bad_security_sections_name_the_field(security, message):
    with pytest.raises(ConfigError, match="security") as info:
        make_config(security=security)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("security", "field"),
    [
        ({"tokens_file": "/nonexistent/tokens"}, "/nonexistent/tokens: cannot read tokens file"),
        (
            {"tls": {"cert_file": "/nonexistent/s.pem", "key_file": "/nonexistent/s.key"}},
            "security.tls.key_file",
        ),
    ],
)
def test_unreadable_files_stop_the_bridge_before_it_starts(catalog, security, field):
    with pytest.raises(ConfigError, match=field):
        BridgeApp(make_config(security=security), catalog)


def test_loopback_peers():
    assert peer_is_loopback("ipv4:127.0.0.1:5000") and peer_is_loopback("ipv6:[::1]:5000")
    assert peer_is_loopback("unix:/run/linebridge.sock")
    assert not peer_is_loopback("ipv4:10.0.0.7:5000") and not peer_is_loopback("ipv6:[fe80::1]:5000")
    assert not peer_is_loopback("garbage")


def test_without_authentication_only_the_address_decides_the_name():
    auth = Authenticator(SecurityConfig())
    local = auth.identify({}, [("authorization", "Bearer whatever")], "ipv4:127.0.0.1:5000")
    assert (local.name, local.role, local.peer) == ("local", Role.ADMIN, "ipv4:127.0.0.1:5000")
    assert auth.identify({}, None, "ipv4:10.0.0.7:5000").name == "anonymous"  # reachable only with --insecure


def test_certificate_names_and_the_first_mapped_one_wins():
    context = {
        "x509_common_name": [b"hmi-box"],
        "peer_uri": [b"spiffe://plant/hmi"],
        "peer_dns": [b"hmi.cell.local"],
    }
    assert certificate_names(context) == ["cn:hmi-box", "uri:spiffe://plant/hmi", "dns:hmi.cell.local"]
    config = SecurityConfig.model_validate(
        {
            "tls": {"cert_file": "s", "key_file": "k", "client_ca_file": "ca"},
            "identities": {"dns:hmi.cell.local": "viewer", "uri:spiffe://plant/hmi": "admin"},
        }
    )
    auth = Authenticator(config)
    assert auth.identify(context, None, "ipv4:10.0.0.7:1").name == "uri:spiffe://plant/hmi"
    with pytest.raises(AuthFailure) as info:
        auth.identify(
            {}, None, "ipv4:127.0.0.1:1"
        )  # mutual TLS configured: a loopback caller is not trusted blindly
    assert info.value.code is grpc.StatusCode.UNAUTHENTICATED
