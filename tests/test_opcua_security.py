"""OPC UA transport security: policies, the server trust list, client certificates and user passwords.

Two secured simulators are shared by the module (each costs ~1 s to build): `robot` offers every
policy and mode and requires a user; `strict` offers only Aes256_Sha256_RsaPss/SignAndEncrypt and
accepts only client certificates in its trusted-clients folder. RSA keys are made once per module.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from linebridge.drivers.base import DeviceError, InvalidArgument
from linebridge.drivers.opcua.certs import (
    application_uri_of,
    client_application_uri,
    der_of,
    ensure_certificate,
    first_certificate,
    load_certificate,
    self_signed,
    thumbprint,
)
from linebridge.drivers.opcua.driver import OpcUaDriver, OpcUaOptions
from linebridge.drivers.opcua.sim_args import parse_args, security_from_args
from linebridge.drivers.opcua.sim_security import SimSecurity
from linebridge.model import DeviceState
from tests.conftest import BridgeFactory, wait_for_state
from tests.opcua_helpers import ThreadedSimulator, by_path, make_driver

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "operator", "s3cret"
SPEED = "axes/1/actual_speed"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bridge's certificate folder for the module; its client certificate is made once, here."""
    folder = tmp_path_factory.mktemp("bridge-pki")
    ensure_certificate(folder, client_application_uri(), "Linebridge test bridge")
    return folder


@pytest.fixture(scope="module")
def robot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedSimulator]:
    """A robot offering all three policies in both modes, requiring a user name and password."""
    security = SimSecurity(cert_dir=tmp_path_factory.mktemp("robot-pki"), users={USER: PASSWORD})
    host = ThreadedSimulator(name="secure-1", rate_hz=10, security=security)
    host.start()
    yield host
    host.stop()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, pki: Path) -> Iterator[ThreadedSimulator]:
    """A robot offering one endpoint only and trusting only the module's client certificate."""
    clients = tmp_path_factory.mktemp("strict-trusted-clients")
    shutil.copy(pki / "own/certs/linebridge.der", clients / "bridge.der")
    security = SimSecurity(
        cert_dir=tmp_path_factory.mktemp("strict-pki"),
        policies=("Aes256_Sha256_RsaPss",),
        modes=("SignAndEncrypt",),
        trusted_clients=clients,
    )
    host = ThreadedSimulator(name="strict-1", rate_hz=10, security=security)
    host.start()
    yield host
    host.stop()


@pytest.fixture(scope="module")
def trusted(
    tmp_path_factory: pytest.TempPathFactory, robot: ThreadedSimulator, strict: ThreadedSimulator
) -> Path:
    """A trust folder holding both robots' certificates, one PEM and one DER (both formats are read)."""
    folder = tmp_path_factory.mktemp("trusted")
    assert robot.sim.certificate is not None and strict.sim.certificate is not None
    cert = load_certificate(robot.sim.certificate.cert_path.read_bytes())
    (folder / "secure-1.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    shutil.copy(strict.sim.certificate.cert_path, folder / "strict-1.der")
    return folder


@pytest.fixture
async def drivers() -> AsyncIterator[list[OpcUaDriver]]:
    """Drivers a test makes; all are closed after it."""
    made: list[OpcUaDriver] = []
    yield made
    for driver in made:
        await driver.close()


def secured(made: list[OpcUaDriver], host: ThreadedSimulator, pki: Path, **options: Any) -> OpcUaDriver:
    """A driver for `host` using the module's client certificate, Basic256Sha256/SignAndEncrypt by default."""
    settings: dict[str, Any] = {
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "certificate_dir": pki,
        "request_timeout": 3.0,
    }
    if host.sim.security is not None and host.sim.security.users:
        settings.update(username=USER, password=PASSWORD)
    driver = make_driver(host.sim.endpoint, device_id=host.sim.name, **(settings | options))
    made.append(driver)
    return driver


def server_thumbprint(host: ThreadedSimulator) -> str:
    assert host.sim.certificate is not None
    return host.sim.certificate.thumbprint


# -- options ---------------------------------------------------------------------------------------


def test_security_options_defaults_and_validation(tmp_path: Path) -> None:
    plain = OpcUaOptions()
    assert (plain.security_policy, plain.security_mode, plain.secured) == ("None", "None", False)
    with pytest.raises(ValidationError, match="needs security_mode Sign or SignAndEncrypt"):
        OpcUaOptions(security_policy="Basic256Sha256")
    with pytest.raises(ValidationError, match="needs a security_policy"):
        OpcUaOptions(security_mode="Sign")
    with pytest.raises(ValidationError, match="security_policy"):
        OpcUaOptions(security_policy="Basic128Rsa15", security_mode="Sign")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="unprotected"):
        OpcUaOptions(username="u", password="p")  # type: ignore[arg-type]
    sec = {"security_policy": "Aes128_Sha256_RsaOaep", "security_mode": "Sign"}
    with pytest.raises(ValidationError, match="not both"):
        OpcUaOptions(**sec, username="u", password="p", password_env="PW")
    with pytest.raises(ValidationError, match="needs password or password_env"):
        OpcUaOptions(**sec, username="u")
    options = OpcUaOptions(**sec, username="u", password="hunter2")
    assert "hunter2" not in repr(options) and options.resolve_password() == "hunter2"
    relative = OpcUaOptions.model_validate(
        {**sec, "certificate_dir": "pki", "trust_dir": "/abs/trust"}, context={"config_dir": tmp_path}
    )
    assert relative.pki_dir() == tmp_path / "pki" and relative.trusted_dir() == Path("/abs/trust")
    assert OpcUaOptions(**sec, certificate_dir=tmp_path).trusted_dir() == tmp_path / "trusted" / "certs"


def test_default_pki_dir_follows_the_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LINEBRIDGE_STATE_DIR", str(tmp_path / "state"))
    assert OpcUaOptions().pki_dir() == tmp_path / "state" / "pki"
    monkeypatch.delenv("LINEBRIDGE_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert OpcUaOptions().pki_dir() == tmp_path / "xdg" / "linebridge" / "pki"


def test_client_certificate_profile(pki: Path) -> None:
    """The module's certificate, made by ensure_certificate on first use, has the OPC UA profile."""
    own = ensure_certificate(pki, client_application_uri(), "ignored: the pair exists")
    cert = x509.load_der_x509_certificate(own.cert_path.read_bytes())
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    assert application_uri_of(cert) == own.application_uri == f"urn:linebridge:bridge:{socket.gethostname()}"
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert socket.gethostname() in names.get_values_for_type(x509.DNSName)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 700 <= lifetime.days <= 740
    assert stat.S_IMODE(own.key_path.stat().st_mode) == 0o600
    assert own.thumbprint == thumbprint(der_of(cert)) and len(own.thumbprint.split(":")) == 32
    # OPC 10000-6 §6.2.3: a certificate field may hold a chain; the leaf comes first.
    assert first_certificate(der_of(cert) + b"\x30\x03\x02\x01\x01") == der_of(cert)


# -- secured sessions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "mode"),
    [
        ("Basic256Sha256", "SignAndEncrypt"),
        ("Aes128_Sha256_RsaOaep", "SignAndEncrypt"),
        ("Aes256_Sha256_RsaPss", "SignAndEncrypt"),
        ("Basic256Sha256", "Sign"),
        ("Aes256_Sha256_RsaPss", "Sign"),
        ("Aes128_Sha256_RsaOaep", "Sign"),
    ],
)
async def test_secured_session_with_a_trusted_server(
    robot: ThreadedSimulator, pki: Path, trusted: Path, drivers: list[OpcUaDriver], policy: str, mode: str
) -> None:
    driver = secured(drivers, robot, pki, trust_dir=trusted, security_policy=policy, security_mode=mode)
    description = await driver.connect()
    assert description.identity == robot.sim.application_uri
    batch = await driver.read([by_path(description)[SPEED]])
    assert len(batch) == 1 and isinstance(batch.values[0], float)
    info = driver.diagnostics()
    assert info["security"] == f"{policy}/{mode}"
    assert info["server_certificate"] == f"{server_thumbprint(robot)} (trusted)"
    assert robot.sim.users is not None and robot.sim.users.attempts[-1] == (USER, True)


async def test_password_from_the_environment(
    robot: ThreadedSimulator,
    pki: Path,
    trusted: Path,
    drivers: list[OpcUaDriver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_OPCUA_PASSWORD", PASSWORD)
    driver = secured(
        drivers,
        robot,
        pki,
        trust_dir=trusted,
        password=None,
        password_env="TEST_OPCUA_PASSWORD",
        security_policy="Aes128_Sha256_RsaOaep",
        security_mode="Sign",
    )
    assert (await driver.connect()).identity == robot.sim.application_uri
    monkeypatch.delenv("TEST_OPCUA_PASSWORD")
    await driver.close()
    with pytest.raises(InvalidArgument, match="TEST_OPCUA_PASSWORD, which is not set"):
        await driver.connect()


async def test_untrusted_server_is_refused_before_any_credentials(
    robot: ThreadedSimulator, pki: Path, tmp_path: Path, drivers: list[OpcUaDriver]
) -> None:
    assert robot.sim.users is not None
    attempts = len(robot.sim.users.attempts)
    driver = secured(drivers, robot, pki, trust_dir=tmp_path / "empty-trust")
    with pytest.raises(DeviceError) as refused:
        await driver.connect()
    message = str(refused.value)
    assert f"OPC UA server {robot.sim.application_uri} is not trusted" in message
    assert server_thumbprint(robot) in message
    assert "trust_on_first_use" in message and str(tmp_path / "empty-trust") in message
    rejected = list((pki / "rejected" / "certs").glob("*secure-1*.der"))
    assert len(rejected) == 1 and thumbprint(rejected[0].read_bytes()) == server_thumbprint(robot)
    assert len(robot.sim.users.attempts) == attempts, "credentials reached an untrusted server"
    assert driver.diagnostics()["state"] == "closed"


async def test_trust_on_first_use_pins_the_certificate(
    robot: ThreadedSimulator, pki: Path, tmp_path: Path, drivers: list[OpcUaDriver]
) -> None:
    trust = tmp_path / "tofu"
    first = secured(drivers, robot, pki, trust_dir=trust, trust_on_first_use=True)
    await first.connect()
    assert first.diagnostics()["server_certificate"] == f"{server_thumbprint(robot)} (trusted on first use)"
    stored = list(trust.iterdir())
    assert len(stored) == 1 and thumbprint(stored[0].read_bytes()) == server_thumbprint(robot)
    second = secured(drivers, robot, pki, trust_dir=trust)  # no TOFU now: the stored copy is what trusts it
    await second.connect()
    assert second.diagnostics()["server_certificate"] == f"{server_thumbprint(robot)} (trusted)"


async def test_a_changed_certificate_is_refused_even_with_tofu(
    robot: ThreadedSimulator, pki: Path, tmp_path: Path, drivers: list[OpcUaDriver]
) -> None:
    trust = tmp_path / "pinned"
    trust.mkdir()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    old = self_signed(key, robot.sim.application_uri, "the robot before it was re-keyed", ("127.0.0.1",))
    (trust / "secure-1-old.der").write_bytes(der_of(old))
    driver = secured(drivers, robot, pki, trust_dir=trust, trust_on_first_use=True)
    with pytest.raises(DeviceError, match="CHANGED certificate") as refused:
        await driver.connect()
    assert server_thumbprint(robot) in str(refused.value) and thumbprint(der_of(old)) in str(refused.value)
    assert [p.name for p in trust.iterdir()] == ["secure-1-old.der"]


async def test_wrong_password_is_refused(
    robot: ThreadedSimulator, pki: Path, trusted: Path, drivers: list[OpcUaDriver]
) -> None:
    driver = secured(drivers, robot, pki, trust_dir=trusted, password="not-the-password")
    with pytest.raises(DeviceError) as refused:
        await driver.connect()
    assert str(refused.value) == (
        f"OPC UA server {robot.sim.application_uri} refused user 'operator': BadUserAccessDenied"
    )
    assert robot.sim.users is not None and robot.sim.users.attempts[-1] == (USER, False)


async def test_anonymous_session_on_a_server_that_requires_users(
    robot: ThreadedSimulator, pki: Path, trusted: Path, drivers: list[OpcUaDriver]
) -> None:
    driver = secured(drivers, robot, pki, trust_dir=trusted, username=None, password=None)
    with pytest.raises(DeviceError, match="does not accept Anonymous sessions.*it takes: UserName"):
        await driver.connect()


@pytest.mark.parametrize(
    ("policy", "mode"),
    [("Basic256Sha256", "SignAndEncrypt"), ("Aes256_Sha256_RsaPss", "Sign"), ("None", "None")],
)
async def test_policy_mismatch_lists_what_the_server_offers(
    strict: ThreadedSimulator, pki: Path, trusted: Path, drivers: list[OpcUaDriver], policy: str, mode: str
) -> None:
    driver = secured(drivers, strict, pki, trust_dir=trusted, security_policy=policy, security_mode=mode)
    with pytest.raises(DeviceError) as refused:
        await driver.connect()
    assert str(refused.value).startswith(
        f"OPC UA server {strict.sim.application_uri} does not offer {policy}/{mode}; "
        "it offers: Aes256_Sha256_RsaPss/SignAndEncrypt."
    )


async def test_client_certificate_created_on_first_start_then_reused(
    strict: ThreadedSimulator, tmp_path: Path, drivers: list[OpcUaDriver]
) -> None:
    """A fresh bridge makes its certificate; the strict server refuses it until an admin trusts it."""
    assert strict.sim.security is not None and strict.sim.security.trusted_clients is not None
    fresh = tmp_path / "fresh-pki"
    options = {"security_policy": "Aes256_Sha256_RsaPss", "trust_on_first_use": True}
    first = secured(drivers, strict, fresh, **options)
    with pytest.raises(
        DeviceError, match="refused the bridge's certificate: BadCertificateUntrusted"
    ) as refused:
        await first.connect()
    cert_path = fresh / "own/certs/linebridge.der"
    created = thumbprint(cert_path.read_bytes())
    assert str(cert_path) in str(refused.value) and created in str(refused.value)
    assert stat.S_IMODE((fresh / "own/private/linebridge.pem").stat().st_mode) == 0o600
    shutil.copy(cert_path, strict.sim.security.trusted_clients / "fresh-bridge.der")
    second = secured(drivers, strict, fresh, **options)
    await second.connect()
    assert second.diagnostics()["client_certificate"] == created
    assert thumbprint(cert_path.read_bytes()) == created


async def test_untrusted_server_takes_the_device_offline_with_the_reason(
    robot: ThreadedSimulator, pki: Path, tmp_path: Path, start_bridge: BridgeFactory
) -> None:
    options = {
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "certificate_dir": str(pki),
        "trust_dir": str(tmp_path / "none-trusted"),
        "username": USER,
        "password": PASSWORD,
    }
    app = await start_bridge(
        [{"id": "secure-1", "driver": "opcua", "endpoint": robot.sim.endpoint, "options": options}]
    )
    await wait_for_state(app, "secure-1", DeviceState.OFFLINE)
    record = app.registry.find("secure-1")
    assert record is not None and record.state is DeviceState.OFFLINE
    assert server_thumbprint(robot) in record.state_reason and "is not trusted" in record.state_reason


# -- simulator CLI ---------------------------------------------------------------------------------


def test_cli_security_flags() -> None:
    assert security_from_args(parse_args(["--name", "r"])) is None
    security = security_from_args(
        parse_args(
            [
                "--name",
                "r",
                "--security-policy",
                "Aes256_Sha256_RsaPss",
                "--security-mode",
                "Sign",
                "--cert-dir",
                "/tmp/x",
                "--user",
                "a:b:c",
                "--user",
                "d:",
                "--allow-none",
            ]
        )
    )
    assert security is not None
    assert (security.policies, security.modes, dict(security.users)) == (
        ("Aes256_Sha256_RsaPss",),
        ("Sign",),
        {"a": "b:c", "d": ""},
    )
    assert security.cert_dir == Path("/tmp/x") and security.allow_none
    with pytest.raises(ValueError, match="NAME:PASSWORD"):
        security_from_args(parse_args(["--user", "nopassword"]))


async def test_cli_serves_secured_and_prints_its_certificate(
    tmp_path: Path, drivers: list[OpcUaDriver]
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "linebridge.drivers.opcua.simulator",
        "--name",
        "cli-secure",
        "--port",
        "0",
        "--rate",
        "5",
        "--no-mdns",
        "--security-policy",
        "Aes128_Sha256_RsaOaep",
        "--cert-dir",
        str(tmp_path / "sim"),
        "--user",
        f"{USER}:{PASSWORD}",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
        assert line.startswith("READY opc.tcp://127.0.0.1:"), line
        printed = (await asyncio.wait_for(proc.stderr.readline(), timeout=5)).decode()
        sim_cert = thumbprint((tmp_path / "sim/own/certs/linebridge.der").read_bytes())
        assert printed.startswith("server certificate ") and sim_cert in printed
        driver = make_driver(
            line.split()[1],
            security_policy="Aes128_Sha256_RsaOaep",
            security_mode="SignAndEncrypt",
            certificate_dir=tmp_path / "bridge",
            trust_on_first_use=True,
            username=USER,
            password=PASSWORD,
        )
        drivers.append(driver)
        assert (await driver.connect()).identity == "urn:linebridge:sim:opcua-robot:cli-secure"
        await driver.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=15) == 0
        assert b"Traceback" not in await proc.stderr.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
