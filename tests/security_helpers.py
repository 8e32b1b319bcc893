"""Helpers of the security tests: certificates from `linebridge certs init`, tokens files, status codes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import grpc
import pytest

from linebridge.app import BridgeApp
from linebridge.client import tls_credentials
from linebridge.client.raw import RawClient
from linebridge.security.certs import CertDir
from linebridge.security.tokens import new_token, token_line

ROOT = Path(__file__).resolve().parent.parent


def certs_init(directory: Path, *args: str) -> str:
    """Run `linebridge certs init --dir DIRECTORY ARGS...` as a user would; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "linebridge.cli", "certs", "init", "--dir", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def write_tokens(path: Path, names: list[str]) -> dict[str, str]:
    """A tokens file with one fresh token per name; the tokens in clear text, for the test's clients."""
    tokens = {name: new_token() for name in names}
    path.write_text("# test tokens\n" + "".join(token_line(n, t) + "\n" for n, t in tokens.items()))
    return tokens


def mtls_section(pki: CertDir, identities: dict[str, str]) -> dict[str, Any]:
    """The `security` section serving mutual TLS with `pki`'s server certificate and CA."""
    cert, key = pki.server
    return {
        "tls": {"cert_file": str(cert), "key_file": str(key), "client_ca_file": str(pki.ca[0])},
        "identities": identities,
    }


def tls_client(
    app: BridgeApp, ca: Path, cert: Path | None = None, key: Path | None = None, token: str | None = None
) -> RawClient:
    """A client of `app` over TLS trusting `ca`, with a client certificate when given."""
    credentials = tls_credentials(
        ca.read_bytes(), cert.read_bytes() if cert else None, key.read_bytes() if key else None
    )
    return RawClient(app.api_address, credentials, token=token)


async def rpc_error(awaitable: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """The error an RPC fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    return info.value
