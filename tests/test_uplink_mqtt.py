"""The uplink's MQTT link (aiomqtt on paho-mqtt) against a real Mosquitto: proof of delivery for QoS 0
data, the will, loss and hang detection, credentials, TLS and MQTT 5. What the broker received is read
from its own log and through an independent paho subscriber."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from linebridge.errors import LinkError
from linebridge.uplink.config import UplinkConfig
from linebridge.uplink.link import Link, LinkCounters, LinkSettings
from linebridge.uplink.sparkplug import ssl_context
from tests.mqtt_broker import Broker, Consumer

WILL = "will"


def settings(port: int, name: str, **changes: object) -> LinkSettings:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "client_id": name,
        "keepalive": 4,
        "protocol": 4,
        "will_topic": f"{WILL}/{name}",
        "will_payload": b"gone",
        "proof_topic": f"linebridge/proof/g/{name}",
        "connect_timeout": 3.0,
    }
    return LinkSettings(**(base | changes))  # type: ignore[arg-type]


class Made:
    """Links made by a test, closed after it; what each proved."""

    def __init__(self) -> None:
        self.links: list[Link] = []
        self.proven: list[int] = []
        self.counters = LinkCounters()

    async def link(self, port: int, name: str, **changes: object) -> Link:
        link = Link(settings(port, name, **changes), self.counters, lambda t, p: None, self.proven.append)
        self.links.append(link)
        await link.connect()
        return link


@pytest.fixture
async def made() -> AsyncIterator[Made]:
    links = Made()
    yield links
    for link in links.links:
        await link.close()


async def until(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_qos0_data_is_proven_by_a_checkpoint_and_arrives_in_order(broker: Broker, made: Made) -> None:
    sub = Consumer(broker.port, "sub", topic_filter="t/#")
    raw: list[tuple[str, bytes]] = []
    sub._on = lambda topic, payload: raw.append((topic, payload))  # type: ignore[method-assign]
    await sub.start()
    link = await made.link(broker.port, "pub")
    positions = [link.publish(f"t/{i % 3}", bytes([i]) * (i * 1000)) for i in range(50)]
    await until(lambda: link.proven >= positions[-1], "the checkpoint's PUBACK")
    assert link.unproven == 0 and made.proven and made.proven[-1] >= positions[-1]
    await until(lambda: len(raw) == 50, "50 messages at the subscriber")
    assert [p for _, p in raw] == [bytes([i]) * (i * 1000) for i in range(50)]
    logged = broker.published("pub")
    data = [m for m in logged if m.topic.startswith("t/")]
    assert len(data) == 50 and {(m.qos, m.retain) for m in data} == {(0, False)}
    proofs = [m for m in logged if m.topic == "linebridge/proof/g/pub"]
    assert proofs and {(m.qos, m.retain) for m in proofs} == {(1, False)}
    (will,) = [m for m in logged if m.will]
    assert (will.topic, will.qos, will.retain) == (f"{WILL}/pub", 1, False)
    await sub.stop()


async def test_the_will_is_published_on_a_lost_connection_but_not_after_disconnect(
    broker: Broker, made: Made
) -> None:
    sub = Consumer(broker.port, "sub", topic_filter=f"{WILL}/#")
    raw: list[tuple[str, bytes]] = []
    sub._on = lambda topic, payload: raw.append((topic, payload))  # type: ignore[method-assign]
    await sub.start()
    polite = await made.link(broker.port, "polite")
    await polite.disconnect()
    rude = await made.link(broker.port, "rude")
    rude.abort("test")  # no DISCONNECT: the broker must publish the will
    await until(lambda: raw, "the will")
    marker = await made.link(broker.port, "marker")  # the broker handles connections in order ...
    marker.abort("test")
    await until(lambda: len(raw) == 2, "the marker's will")  # ... so a polite will would be here by now
    assert raw == [(f"{WILL}/rude", b"gone"), (f"{WILL}/marker", b"gone")]
    await sub.stop()


async def test_a_dying_broker_closes_the_link_and_proves_nothing_more(broker: Broker, made: Made) -> None:
    link = await made.link(broker.port, "c")
    await broker.kill()
    async with asyncio.timeout(10):
        reason = await link.closed
    assert reason
    with pytest.raises(LinkError):
        link.publish("t", b"x")


async def test_a_hung_broker_is_dropped_by_the_checkpoint_watchdog(broker: Broker, made: Made) -> None:
    """SIGSTOP keeps the socket open; the unanswered checkpoint (not paho's 2 x keepalive) ends the link."""
    link = await made.link(broker.port, "hung", keepalive=2)
    first = link.publish("t/0", b"before")
    await until(lambda: link.proven >= first, "proof before the hang")
    broker.pause()
    try:
        sent = link.publish("t/0", b"during")
        async with asyncio.timeout(20):
            reason = await link.closed
    finally:
        broker.resume()
    assert "no PUBACK" in reason and made.counters.hung_broker == 1
    assert link.proven < sent  # what was sent into the hang stays unproven (the outbox keeps it)


async def test_an_idle_link_probes_and_notices_a_hung_broker(broker: Broker, made: Made) -> None:
    """No data at all: the keepalive / 4 probe is the checkpoint that goes unanswered."""
    link = await made.link(broker.port, "idle", keepalive=2)
    await until(lambda: link.proven >= 1, "the first idle probe answered")
    broker.pause()
    try:
        async with asyncio.timeout(20):
            reason = await link.closed
    finally:
        broker.resume()
    assert "no PUBACK" in reason and made.counters.hung_broker == 1


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


async def test_refused_credentials_are_an_error_and_good_ones_connect(tmp_path: Path, made: Made) -> None:
    passwords = password_file(tmp_path / "passwords", "bridge", "s3cret")
    server = Broker(tmp_path, f"password_file {passwords}\n", anonymous=False)
    await server.start()
    try:
        with pytest.raises(LinkError, match="[Nn]ot authori[sz]ed|[Bb]ad user"):
            await made.link(server.port, "bad", username="bridge", password="wrong")
        with pytest.raises(LinkError, match="[Nn]ot authori[sz]ed"):
            await made.link(server.port, "anonymous")
        good = await made.link(server.port, "good", username="bridge", password="s3cret")
        position = good.publish("t", b"x")
        await until(lambda: good.proven >= position, "proof")
    finally:
        await server.stop()


async def test_mqtt5_connects_with_clean_start_and_proves_data(broker: Broker, made: Made) -> None:
    link = await made.link(broker.port, "five", protocol=5)
    position = link.publish("t/5", b"x")
    await until(lambda: link.proven >= position, "proof over MQTT 5")
    log = broker.log.read_text()
    assert "as five (p5, c1, k4)" in log  # protocol 5, clean start
    (will,) = [m for m in broker.published("five") if m.will]
    assert (will.qos, will.retain) == (1, False)


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
async def test_tls_with_a_client_certificate(tmp_path: Path, made: Made) -> None:
    make_pki(tmp_path)
    server = Broker(
        tmp_path,
        f"cafile {tmp_path}/ca.crt\ncertfile {tmp_path}/server.crt\n"
        f"keyfile {tmp_path}/server.key\nrequire_certificate true\n",
    )
    await server.start()
    try:
        base = {"broker": f"mqtts://127.0.0.1:{server.port}", "tls": {"ca_file": str(tmp_path / "ca.crt")}}
        cert = {"cert_file": str(tmp_path / "client.crt"), "key_file": str(tmp_path / "client.key")}
        with_cert = UplinkConfig.model_validate(base | {"tls": base["tls"] | cert})  # type: ignore[operator]
        link = await made.link(server.port, "tls", ssl_context=ssl_context(with_cert))
        position = link.publish("secure", b"hello")
        await until(lambda: link.proven >= position, "proof over TLS")
        without = ssl_context(UplinkConfig.model_validate(base))
        with pytest.raises(LinkError):
            await made.link(server.port, "no-cert", ssl_context=without)
    finally:
        await server.stop()
