"""The uplink's MQTT 3.1.1 client against a real Mosquitto: QoS 1, will, loss detection, auth and TLS."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from linebridge.uplink.config import UplinkConfig
from linebridge.uplink.mqtt import ConnectionLost, MqttClient, MqttError, Will
from linebridge.uplink.sparkplug import ssl_context
from tests.mqtt_broker import Broker


class Inbox:
    """Collects what a subscriber receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.arrived = asyncio.Event()

    def __call__(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, payload))
        self.arrived.set()

    async def wait(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.messages) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def clients() -> AsyncIterator[list[MqttClient]]:
    made: list[MqttClient] = []
    yield made
    for client in made:
        await client.close()


async def connected(made: list[MqttClient], port: int, name: str, **kwargs: object) -> MqttClient:
    client = MqttClient("127.0.0.1", port, name, keepalive=5, **kwargs)  # type: ignore[arg-type]
    made.append(client)
    await client.connect()
    return client


async def test_qos1_publish_is_acknowledged_and_delivered_in_order(
    broker: Broker, clients: list[MqttClient]
) -> None:
    inbox = Inbox()
    sub = await connected(clients, broker.port, "sub", on_message=inbox)
    assert await sub.subscribe([("t/#", 1)]) == [1]
    pub = await connected(clients, broker.port, "pub")
    futures = [pub.publish(f"t/{i % 3}", bytes([i]) * (i * 1000), qos=1) for i in range(50)]
    await asyncio.wait_for(asyncio.gather(*futures), 10)  # type: ignore[arg-type]
    assert pub.inflight == 0
    await inbox.wait(50)
    assert [p for _, p in inbox.messages] == [bytes([i]) * (i * 1000) for i in range(50)]


async def test_the_will_is_published_on_a_lost_connection_but_not_after_disconnect(
    broker: Broker, clients: list[MqttClient]
) -> None:
    inbox = Inbox()
    sub = await connected(clients, broker.port, "sub", on_message=inbox)
    await sub.subscribe([("will/#", 1)])
    polite = await connected(clients, broker.port, "polite", will=Will("will/polite", b"gone"))
    await polite.disconnect()
    rude = await connected(clients, broker.port, "rude", will=Will("will/rude", b"gone"))
    await rude.close()  # no DISCONNECT: the broker must publish the will
    await inbox.wait(1)
    await asyncio.sleep(0.2)
    assert inbox.messages == [("will/rude", b"gone")]


async def test_a_dying_broker_fails_pending_publishes_and_closes_the_client(
    broker: Broker, clients: list[MqttClient]
) -> None:
    client = await connected(clients, broker.port, "c")
    await broker.kill()
    async with asyncio.timeout(10):
        reason = await client.closed  # type: ignore[misc]
    assert reason is not None and not client.connected
    with pytest.raises(ConnectionLost):
        client.publish("t", b"x", qos=1)


def password_file(path: Path, user: str, password: str) -> Path:
    subprocess.run(
        [
            shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd",
            "-b",
            "-c",
            str(path),
            user,
            password,
        ],
        check=True,
        capture_output=True,
    )
    return path


async def test_refused_credentials_are_an_error_and_good_ones_connect(
    tmp_path: Path, clients: list[MqttClient]
) -> None:
    passwords = password_file(tmp_path / "passwords", "bridge", "s3cret")
    server = Broker(tmp_path, f"password_file {passwords}\n", anonymous=False)
    await server.start()
    try:
        with pytest.raises(MqttError, match="refused"):
            await connected(clients, server.port, "bad", username="bridge", password="wrong")
        with pytest.raises(MqttError, match="refused"):
            await connected(clients, server.port, "anonymous")
        good = await connected(clients, server.port, "good", username="bridge", password="s3cret")
        assert good.connected
    finally:
        await server.stop()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path) -> None:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        cwd=directory,
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl(
            "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=directory
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            cwd=directory,
        )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certificates")
async def test_tls_with_a_client_certificate(tmp_path: Path, clients: list[MqttClient]) -> None:
    make_pki(tmp_path)
    server = Broker(
        tmp_path,
        f"cafile {tmp_path}/ca.crt\ncertfile {tmp_path}/server.crt\n"
        f"keyfile {tmp_path}/server.key\nrequire_certificate true\n",
    )
    await server.start()
    try:
        base = {"broker": f"mqtts://127.0.0.1:{server.port}", "tls": {"ca_file": str(tmp_path / "ca.crt")}}
        with_cert = UplinkConfig.model_validate(
            base
            | {
                "tls": base["tls"]
                | {  # type: ignore[operator]
                    "cert_file": str(tmp_path / "client.crt"),
                    "key_file": str(tmp_path / "client.key"),
                }
            }
        )
        client = await connected(clients, server.port, "tls", ssl_context=ssl_context(with_cert))
        future = client.publish("secure", b"hello", qos=1)
        await asyncio.wait_for(future, 5)  # type: ignore[arg-type]
        without = ssl_context(UplinkConfig.model_validate(base))
        with pytest.raises((OSError, ConnectionError, MqttError, asyncio.IncompleteReadError)):
            await connected(clients, server.port, "no-cert", ssl_context=without)
    finally:
        await server.stop()
