"""Regressions from the fault probe (issue #12): `run --check` makes every start check; clear config errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from linebridge.cli.main import main
from linebridge.errors import ConfigError
from linebridge.uplink.config import OutboxConfig
from linebridge.uplink.outbox import Outbox


def _config(tmp_path: Path, **sections: Any) -> str:
    data: dict[str, Any] = {
        "grpc": {"address": "127.0.0.1:0"},
        "metrics": {"enabled": False},
        "discovery": {"enabled": False},
        "audit": {"path": str(tmp_path / "audit")},
    }
    for key, value in sections.items():
        data[key] = value if not isinstance(value, dict) else {**data.get(key, {}), **value}
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _a_file(tmp_path: Path) -> Path:
    """A regular file, used as if it were a folder (fails for root too, unlike permissions)."""
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    return path


def _check(config: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["run", "-c", config, "--check", *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_check_accepts_a_good_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code, out = _check(_config(tmp_path), capsys)
    assert code == 0 and "OK" in out
    assert not (tmp_path / "audit").exists()  # a check writes nothing where the bridge would


BAD = {
    "0.0.0.0 without TLS": ({"grpc": {"address": "0.0.0.0:50051"}}, "refusing to serve the gRPC API"),
    "missing TLS files": (
        {"security": {"tls": {"cert_file": "/nonexistent/cert.pem", "key_file": "/nonexistent/key.pem"}}},
        "security.tls.key_file: cannot read /nonexistent/key.pem",
    ),
    "missing tokens file": ({"security": {"tokens_file": "/nonexistent/tokens"}}, "cannot read tokens file"),
    "http endpoint for Modbus": (
        {
            "devices": [
                {
                    "id": "plc-1",
                    "driver": "modbus",
                    "endpoint": "http://127.0.0.1:502",
                    "options": {"map": "cell-plc"},
                }
            ]
        },
        "devices[0].endpoint: endpoint 'http://127.0.0.1:502' is not modbus+tcp://host[:port]",
    ),
    "missing uplink CA file": (
        {
            "uplink": {
                "enabled": True,
                "broker": "mqtts://127.0.0.1:8883",
                "tls": {"ca_file": "/nonexistent/ca.pem"},
            }
        },
        "uplink.tls.ca_file: cannot load: No such file or directory",
    ),
    "opc.tcp endpoint typo": (
        {"devices": [{"id": "rob-1", "driver": "opcua", "endpoint": "opc.tpc://127.0.0.1:4840"}]},
        "devices[0].endpoint: endpoint 'opc.tpc://127.0.0.1:4840' must look like opc.tcp://",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_check_refuses_what_start_refuses(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    sections, message = BAD[case]
    code, out = _check(_config(tmp_path, **sections), capsys)
    assert code == 2, out
    assert message in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("field", "sections"),
    [
        ("audit.path", lambda f: {"audit": {"path": str(f / "audit")}}),
        (
            "uplink.outbox.path",
            lambda f: {"uplink": {"enabled": True, "outbox": {"path": str(f / "o.sqlite")}}},
        ),
        ("discovery.approvals_file", lambda f: {"discovery": {"approvals_file": str(f / "approvals.json")}}),
    ],
)
def test_check_refuses_unwritable_folders_naming_the_field(
    field: str, sections: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    code, out = _check(_config(tmp_path, **sections(_a_file(tmp_path))), capsys)
    assert code == 2, out
    assert f"{field}: cannot use" in out and "is not a folder" in out


def test_check_refuses_a_malformed_approvals_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    approvals = tmp_path / "approvals.json"
    approvals.write_text("[1, 2]\n")
    code, out = _check(_config(tmp_path, discovery={"approvals_file": str(approvals)}), capsys)
    assert code == 2 and f"{approvals}: not an approvals file" in out


def test_run_with_an_unwritable_outbox_is_a_config_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    outbox = {"enabled": True, "outbox": {"path": str(_a_file(tmp_path) / "outbox.sqlite")}}
    code = main(["run", "-c", _config(tmp_path, uplink=outbox)])
    err = capsys.readouterr().err
    assert code == 2 and "configuration error" in err and "uplink.outbox.path" in err
    assert "Traceback" not in err and "FileExistsError" not in err


async def test_opening_an_outbox_under_a_file_names_the_field(tmp_path: Path):
    outbox = Outbox(OutboxConfig(), _a_file(tmp_path) / "outbox.sqlite")
    with pytest.raises(ConfigError) as info:
        await outbox.open()
    await outbox.close()
    assert str(info.value).startswith("uplink.outbox.path: cannot create the folder of")
