"""Regressions from the fault probe (issue #12): clear config errors for paths the bridge cannot use."""

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
