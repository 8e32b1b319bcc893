"""Bearer tokens: the file holds hashes only; good, wrong, missing and malformed tokens over TLS; tokens
together with mutual TLS; `linebridge token new`."""

from __future__ import annotations

import stat
import sys

import grpc
import pytest

from linebridge.api import pb
from linebridge.api.auth import AuthFailure, bearer_token
from linebridge.client.raw import RawClient
from linebridge.errors import ConfigError
from linebridge.model import DeviceState
from linebridge.security.certs import CertDir
from linebridge.security.tokens import TokenTable, hash_token, new_token
from tests.conftest import sim_device, wait_for_state
from tests.security_helpers import certs_init, mtls_section, rpc_error, tls_client, write_tokens
from tests.test_cli import run

Code = grpc.StatusCode


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> CertDir:
    root = tmp_path_factory.mktemp("pki") / "lab"
    certs_init(root, "--client", "hmi:viewer")
    return CertDir(root)


@pytest.fixture
async def closing():
    made: list[RawClient] = []
    yield lambda c: made.append(c) or c
    for client in made:
        await client.close()


def test_token_table_parses_hashes_and_rejects_anything_else():
    token = new_token()
    table = TokenTable.parse(f"# comment\n\nmes {hash_token(token)}  # the MES\n", "tokens")
    assert table.verify(token) == "mes" and table.verify(token + "x") is None and table.verify("") is None
    assert token not in repr(table)  # only hashes are kept
    for bad in (
        "mes",
        f"mes {token}",
        "mes sha256:abc",
        f"mes {hash_token(token)} extra",
        f"a {hash_token('x')}\na {hash_token('y')}",
    ):
        with pytest.raises(ConfigError, match=r"^tokens:\d"):
            TokenTable.parse(bad, "tokens")


def test_bearer_header_parsing():
    assert bearer_token([("x-other", "1"), ("authorization", "Bearer abc")]) == "abc"
    assert bearer_token([("authorization", "bearer  abc ")]) == "abc"
    assert bearer_token(None) is None
    for bad in ("Basic dXNlcjpwYXNz", "Bearer", "abc"):
        with pytest.raises(AuthFailure) as info:
            bearer_token([("authorization", bad)])
        assert info.value.code is Code.UNAUTHENTICATED


async def test_tokens_over_server_tls(start_bridge, lab, tmp_path, closing):
    tokens = write_tokens(tmp_path / "tokens", ["mes", "old"])
    cert, key = lab.server
    app = await start_bridge(
        [sim_device("sim-1", signals=1, rate_hz=20)],
        security={
            "tls": {"cert_file": str(cert), "key_file": str(key)},
            "tokens_file": str(tmp_path / "tokens"),
            "identities": {"token:mes": "viewer"},
        },
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    good = closing(tls_client(app, lab.ca[0], token=tokens["mes"]))
    assert [d.id for d in await good.list_devices()] == ["sim-1"]
    wrong = await rpc_error(closing(tls_client(app, lab.ca[0], token=tokens["mes"] + "x")).list_devices())
    assert (wrong.code(), wrong.details()) == (Code.UNAUTHENTICATED, "invalid bearer token")
    missing = await rpc_error(closing(tls_client(app, lab.ca[0])).list_devices())
    assert missing.code() is Code.UNAUTHENTICATED and "no credentials" in missing.details()
    malformed = closing(tls_client(app, lab.ca[0]))
    error = await rpc_error(
        malformed.devices.ListDevices(
            pb.device.ListDevicesRequest(), metadata=(("authorization", "Basic Zm9vOmJhcg=="),)
        )
    )
    assert error.code() is Code.UNAUTHENTICATED
    unmapped = await rpc_error(closing(tls_client(app, lab.ca[0], token=tokens["old"])).list_devices())
    assert unmapped.code() is Code.PERMISSION_DENIED
    plaintext = await rpc_error(closing(RawClient(app.api_address, token=tokens["mes"])).list_devices())
    assert plaintext.code() is Code.UNAVAILABLE  # a TLS port does not speak plaintext


async def test_token_names_the_caller_on_a_mutual_tls_connection(start_bridge, lab, tmp_path, closing):
    tokens = write_tokens(tmp_path / "tokens", ["line-operator"])
    section = mtls_section(lab, {"cn:hmi": "viewer", "token:line-operator": "operator"})
    app = await start_bridge(
        [sim_device("sim-1", signals=1, rate_hz=20)],
        security={**section, "tokens_file": str(tmp_path / "tokens")},
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    cert, key = lab.client("hmi")
    hmi = closing(tls_client(app, lab.ca[0], cert, key))
    stop = pb.command.ExecuteRequest(device_id="sim-1", stop=pb.command.StopAction())
    assert (await rpc_error(hmi.execute(stop))).code() is Code.PERMISSION_DENIED  # the HMI box is a viewer
    person = closing(tls_client(app, lab.ca[0], cert, key, token=tokens["line-operator"]))
    events = await person.execute(stop)  # the person signed in at the HMI is an operator
    assert app.commands.get(events[-1].command_id).spec.identity.name == "token:line-operator"


async def test_token_new_appends_a_hash_and_prints_the_token_once(tmp_path):
    path = tmp_path / "tokens"
    code, out, err = await run(
        sys.executable,
        "-m",
        "linebridge.cli",
        "token",
        "new",
        "mes",
        "--file",
        str(path),
        "--role",
        "operator",
    )
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    assert token.startswith("lbt_") and token not in path.read_text()
    assert TokenTable.load(path).verify(token) == "mes"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert '"token:mes": operator' in out
    code, _, err = await run(
        sys.executable, "-m", "linebridge.cli", "token", "new", "mes", "--file", str(path)
    )
    assert code == 2 and "exists" in err
