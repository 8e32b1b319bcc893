"""Mutual TLS with certificates from `linebridge certs init`: the good client, an expired one, one signed by
another CA, none at all, an unmapped one; the printed config snippet; the CLI's --ca/--cert/--key."""

from __future__ import annotations

import asyncio
import datetime
import stat
import sys
from pathlib import Path

import grpc
import pytest
import yaml
from cryptography import x509

from linebridge.api import pb
from linebridge.cli.healthcheck import main as healthcheck
from linebridge.client.raw import value_message
from linebridge.model import DeviceState, Role
from linebridge.security.certs import CertDir, Issued, issue
from tests.conftest import sim_device, wait_for_state
from tests.security_helpers import certs_init, mtls_section, rpc_error, tls_client
from tests.test_cli import run

Code = grpc.StatusCode
CLIENTS = ("viewer-1:viewer", "op-1:operator", "admin-1:admin", "stranger:viewer")
IDENTITIES = {"cn:viewer-1": "viewer", "cn:op-1": "operator", "cn:admin-1": "admin"}  # not the stranger


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, object]:
    """Two labs made by the CLI: ours, and another CA whose certificates our bridge must refuse."""
    root = tmp_path_factory.mktemp("pki")
    printed = certs_init(root / "lab", *(arg for c in CLIENTS for arg in ("--client", c)))
    certs_init(root / "other", "--client", "op-1:operator")
    return {"lab": CertDir(root / "lab"), "other": CertDir(root / "other"), "printed": printed}


@pytest.fixture
async def clients():
    made = []

    def keep(client):
        made.append(client)
        return client

    yield keep
    for client in made:
        await client.close()


async def mtls_bridge(start_bridge, lab: CertDir, identities=IDENTITIES):
    app = await start_bridge(
        [sim_device("sim-1", signals=1, rate_hz=20)], security=mtls_section(lab, identities)
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    return app


def as_client(app, lab: CertDir, name: str, pair: tuple[Path, Path] | None = None):
    cert, key = pair or lab.client(name)
    return tls_client(app, lab.ca[0], cert, key)


def test_certs_init_writes_private_keys_for_the_owner_only(pki):
    lab = pki["lab"]
    for key in (lab.ca[1], lab.server[1], lab.client("op-1")[1]):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    server = Issued.load(*lab.server).cert
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


async def test_printed_config_snippet_serves_mutual_tls(pki, start_bridge, clients):
    text = pki["printed"]
    snippet = text[text.index("security:") : text.index("# and talk")]
    section = yaml.safe_load(snippet)["security"]
    assert section["identities"] == {
        "cn:viewer-1": "viewer",
        "cn:op-1": "operator",
        "cn:admin-1": "admin",
        "cn:stranger": "viewer",
    }
    app = await start_bridge([sim_device("sim-1", signals=1, rate_hz=20)], security=section)
    devices = await clients(as_client(app, pki["lab"], "admin-1")).list_devices()
    assert [d.id for d in devices] == ["sim-1"]


async def test_client_certificate_names_the_caller_and_its_role(pki, start_bridge, clients):
    lab = pki["lab"]
    app = await mtls_bridge(start_bridge, lab)
    write = pb.command.ExecuteRequest(
        device_id="sim-1",
        write=pb.command.WriteAction(
            writes=[pb.command.SignalWrite(path="setpoint", value=value_message(4.0))]
        ),
    )
    viewer = clients(as_client(app, lab, "viewer-1"))
    assert len(await viewer.list_devices()) == 1
    denied = await rpc_error(viewer.execute(write))
    assert denied.code() is Code.PERMISSION_DENIED and denied.details().startswith(
        "cn:viewer-1 has role viewer"
    )
    events = await clients(as_client(app, lab, "op-1")).execute(write)
    assert events[-1].state == pb.command.COMMAND_STATE_SUCCEEDED
    identity = app.commands.get(events[-1].command_id).spec.identity
    assert (identity.name, identity.role) == ("cn:op-1", Role.OPERATOR)


async def test_unmapped_certificate_is_permission_denied(pki, start_bridge, clients):
    lab = pki["lab"]
    app = await mtls_bridge(start_bridge, lab)
    error = await rpc_error(clients(as_client(app, lab, "stranger")).list_devices())
    assert error.code() is Code.PERMISSION_DENIED
    assert error.details().startswith("cn:stranger has no role on this bridge")


async def test_san_uri_identity(pki, start_bridge, clients, tmp_path):
    lab = pki["lab"]
    hmi = issue(Issued.load(*lab.ca), "hmi-box", client=True, alt_names=["spiffe://plant/cell-3/hmi"])
    hmi.save(tmp_path / "hmi.pem", tmp_path / "hmi.key")
    app = await mtls_bridge(start_bridge, lab, {"uri:spiffe://plant/cell-3/hmi": "operator"})
    client = clients(as_client(app, lab, "hmi", (tmp_path / "hmi.pem", tmp_path / "hmi.key")))
    stop = await client.execute(pb.command.ExecuteRequest(device_id="sim-1", stop=pb.command.StopAction()))
    assert app.commands.get(stop[-1].command_id).spec.identity.name == "uri:spiffe://plant/cell-3/hmi"


@pytest.mark.parametrize("case", ["expired", "other-ca", "no-cert"])
async def test_bad_client_certificates_are_refused_at_the_handshake(
    case, pki, start_bridge, clients, tmp_path
):
    lab: CertDir = pki["lab"]
    app = await mtls_bridge(start_bridge, lab)
    if case == "expired":  # signed by our CA, for the right name, but its validity ended yesterday
        long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
        issue(Issued.load(*lab.ca), "op-1", client=True, days=29, not_before=long_ago).save(
            tmp_path / "old.pem", tmp_path / "old.key"
        )
        bad = as_client(app, lab, "old", (tmp_path / "old.pem", tmp_path / "old.key"))
    elif case == "other-ca":  # the right name, the wrong issuer
        bad = as_client(app, lab, "op-1", pki["other"].client("op-1"))
    else:
        bad = tls_client(app, lab.ca[0])
    error = await rpc_error(clients(bad).devices.ListDevices(pb.device.ListDevicesRequest(), timeout=10))
    assert error.code() is Code.UNAVAILABLE  # no TLS session, so no RPC and no identity
    assert len(await clients(as_client(app, lab, "viewer-1")).list_devices()) == 1  # others unaffected


async def test_cli_talks_to_a_mutual_tls_bridge(pki, start_bridge):
    lab: CertDir = pki["lab"]
    app = await mtls_bridge(start_bridge, lab)
    cert, key = lab.client("viewer-1")
    base = [sys.executable, "-m", "linebridge.cli", "devices", "--target", app.api_address]
    code, out, err = await run(*base, "--ca", str(lab.ca[0]), "--cert", str(cert), "--key", str(key))
    assert code == 0 and "sim-1" in out, err
    code, _, err = await run(*base, "--cert", str(cert))
    assert code == 2 and "--cert and --key go together" in err


async def test_client_sdk_over_mutual_tls(pki, start_bridge):
    """AsyncClient with the PEM files as paths: the operator writes, the viewer is refused by role."""
    from linebridge.client import AsyncClient, PermissionDenied

    lab: CertDir = pki["lab"]
    app = await mtls_bridge(start_bridge, lab)
    cert, key = lab.client("op-1")
    async with AsyncClient(app.api_address, ca=lab.ca[0], cert=cert, key=key) as operator:
        assert [d.id for d in await operator.devices()] == ["sim-1"]
        assert await (await operator.execute("sim-1", write={"setpoint": 3.0})).wait(timeout=10) == ()
    viewer_cert, viewer_key = lab.client("viewer-1")
    pem = {"ca": lab.ca[0].read_bytes(), "cert": viewer_cert.read_bytes(), "key": viewer_key.read_bytes()}
    async with AsyncClient(app.api_address, **pem) as viewer:
        with pytest.raises(PermissionDenied, match="cn:viewer-1 has role viewer"):
            await viewer.execute("sim-1", stop=True)


async def test_healthcheck_over_mutual_tls(pki, start_bridge, monkeypatch):
    """The container's health probe: TLS settings from the environment, no role needed."""
    lab: CertDir = pki["lab"]
    app = await mtls_bridge(start_bridge, lab, {})  # nobody has a role; health is still open
    cert, key = lab.client("stranger")
    monkeypatch.setenv("LINEBRIDGE_CA", str(lab.ca[0]))
    monkeypatch.setenv("LINEBRIDGE_CERT", str(cert))
    monkeypatch.setenv("LINEBRIDGE_KEY", str(key))
    assert await asyncio.to_thread(healthcheck, [app.api_address]) == 0
    monkeypatch.delenv("LINEBRIDGE_CERT")
    monkeypatch.delenv("LINEBRIDGE_KEY")
    assert (
        await asyncio.to_thread(healthcheck, [app.api_address]) == 1
    )  # mutual TLS: no certificate, no session
