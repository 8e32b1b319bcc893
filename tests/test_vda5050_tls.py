"""The fleet connection over TLS with a client certificate, as the uplink's (vda5050+mqtts://)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from linebridge.drivers.vda5050.simulator import AgvFleet
from linebridge.model import DeviceState
from tests.conftest import BridgeFactory, free_port, wait_for_state
from tests.mqtt_broker import Broker
from tests.test_uplink_mqtt import make_pki
from tests.vda5050_helpers import MANUFACTURER


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certificates")
async def test_the_fleet_broker_over_tls_with_a_client_certificate(
    tmp_path: Path, start_bridge: BridgeFactory
) -> None:
    make_pki(tmp_path)
    tls_port = free_port()
    # The simulated AGVs use the plain listener; the bridge only the TLS one, which demands a certificate.
    server = Broker(
        tmp_path,
        f"listener {tls_port} 127.0.0.1\ncafile {tmp_path}/ca.crt\ncertfile {tmp_path}/server.crt\n"
        f"keyfile {tmp_path}/server.key\nrequire_certificate true\n",
    )
    await server.start()
    fleet = AgvFleet(server.url, 1, viz_hz=2, state_interval=5)
    await fleet.start()
    try:
        endpoint = f"vda5050+mqtts://127.0.0.1:{tls_port}?interface=uagv&manufacturer={MANUFACTURER}"
        options = {
            "tls_ca_file": str(tmp_path / "ca.crt"),
            "tls_cert_file": str(tmp_path / "client.crt"),
            "tls_key_file": str(tmp_path / "client.key"),
        }
        app = await start_bridge(
            [
                {"id": "fleet", "driver": "vda5050", "endpoint": endpoint, "options": options},
                {
                    "id": "no-cert",
                    "driver": "vda5050",
                    "endpoint": endpoint,
                    "options": {"tls_ca_file": options["tls_ca_file"]},
                },
            ]
        )
        await wait_for_state(app, "agv-001", DeviceState.ONLINE, timeout=20)
        await wait_for_state(app, "no-cert", DeviceState.OFFLINE, timeout=20)  # refused without a certificate
        assert app.registry.get("agv-001").description.vendor == MANUFACTURER
    finally:
        await fleet.stop()
        await server.stop()
