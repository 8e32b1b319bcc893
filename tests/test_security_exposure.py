"""A non-loopback address needs TLS and authentication, or --insecure and then a warning at start and in
GetInfo. Nothing here binds a non-loopback address: the check is on the address string."""

from __future__ import annotations

import logging
import sys

import pytest

from linebridge.api import pb
from linebridge.api.server import check_exposure
from linebridge.app import BridgeApp
from linebridge.client.raw import RawClient
from linebridge.errors import ConfigError
from tests.conftest import make_config
from tests.test_cli import run

LINE = "10.20.30.40:50051"  # a plant network address; never bound


def test_loopback_needs_nothing():
    for address in ("127.0.0.1:50051", "localhost:50051", "[::1]:50051", "127.0.0.2:1"):
        assert check_exposure(address, insecure=False) == []


def test_non_loopback_without_tls_is_refused_unless_insecure():
    with pytest.raises(ConfigError, match="without TLS.*--insecure"):
        check_exposure(LINE, insecure=False)
    with pytest.raises(ConfigError, match="without TLS"):
        check_exposure(
            "0.0.0.0:50051", insecure=False, tls=False, authentication=True
        )  # tokens in clear text
    [warning] = check_exposure(LINE, insecure=True)
    assert "without TLS (--insecure)" in warning and "any host" in warning


def test_tls_without_client_authentication_is_refused_too():
    with pytest.raises(ConfigError, match="without client authentication"):
        check_exposure(LINE, insecure=False, tls=True, authentication=False)
    assert check_exposure(LINE, insecure=False, tls=True, authentication=True) == []


async def test_insecure_bridge_warns_at_start_and_in_get_info(catalog, caplog):
    config = make_config(grpc={"address": LINE})
    with pytest.raises(ConfigError, match="refusing to serve"):
        BridgeApp(config, catalog)
    app = BridgeApp(config, catalog, insecure=True)
    app.api.address = "127.0.0.1:0"  # the warning is about the configured address; bind loopback for the test
    caplog.set_level(logging.WARNING, "linebridge.app")
    await app.start()
    try:
        async with RawClient(f"127.0.0.1:{app.grpc_port}") as client:
            info = await client.bridge.GetInfo(pb.bridge.GetInfoRequest())
    finally:
        await app.stop()
    [warning] = [w for w in info.warnings if LINE in w]
    assert "without TLS (--insecure)" in warning
    assert any(warning in r.getMessage() for r in caplog.records)


async def test_linebridge_run_refuses_a_line_address_without_tls(tmp_path):
    config = tmp_path / "bridge.yaml"
    config.write_text(
        f"grpc:\n  address: {LINE}\nmetrics:\n  enabled: false\ndiscovery:\n  enabled: false\n"
        "audit:\n  enabled: false\n"
    )
    code, _, err = await run(sys.executable, "-m", "linebridge.cli", "run", "-c", str(config), timeout=30)
    assert code == 2 and "refusing to serve the gRPC API on 10.20.30.40:50051 without TLS" in err
