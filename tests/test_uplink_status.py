"""Uplink status everywhere it shows: GetUplinkStatus, `linebridge uplink status`, metrics, the demo line."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from linebridge.api import pb
from linebridge.app import BridgeApp
from linebridge.cli.demo import uplink_line
from linebridge.cli.main import _parser, main
from linebridge.cli.remote import run_client
from linebridge.client.raw import RawClient
from linebridge.errors import ConfigError
from linebridge.model import DeviceState
from linebridge.uplink.config import UplinkConfig, with_broker
from tests.conftest import BridgeFactory, sim_device, wait_for_state


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port that is bound but never listens: every connection attempt is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def cli_status(app: BridgeApp, capsys: pytest.CaptureFixture[str]) -> str:
    args = _parser().parse_args(["uplink", "status", "--target", app.api_address])
    assert await run_client(args) == 0
    return capsys.readouterr().out


async def test_disabled_uplink(
    start_bridge: BridgeFactory,
    client_for: Callable[[BridgeApp], RawClient],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = await start_bridge([])
    status = await client_for(app).bridge.GetUplinkStatus(pb.bridge.GetUplinkStatusRequest())
    assert status.state == pb.bridge.UPLINK_STATE_DISABLED
    assert "uplink: disabled" in await cli_status(app, capsys)


async def test_without_a_broker_data_buffers_and_every_view_says_so(
    start_bridge: BridgeFactory,
    client_for: Callable[[BridgeApp], RawClient],
    refusing_port: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = await start_bridge(
        [sim_device("sim-1", rate_hz=200, signals=4)],
        uplink={
            "enabled": True,
            "broker": f"mqtt://127.0.0.1:{refusing_port}",
            "reconnect_initial_seconds": 0.05,
            "reconnect_max_seconds": 0.2,
            "outbox": {"path": str(tmp_path / "o.sqlite"), "commit_interval_seconds": 0.1},
        },
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    client = client_for(app)
    first = await client.bridge.GetUplinkStatus(pb.bridge.GetUplinkStatusRequest())
    status = first
    while status.backlog_samples <= first.backlog_samples or not status.last_error:
        status = await client.bridge.GetUplinkStatus(pb.bridge.GetUplinkStatusRequest(), timeout=5)
    assert status.state in (pb.bridge.UPLINK_STATE_OFFLINE, pb.bridge.UPLINK_STATE_CONNECTING)
    assert (
        status.backlog_messages > 0 and status.backlog_bytes > 0 and status.outbox_path.endswith("o.sqlite")
    )
    assert status.dropped_samples == 0 and status.published_samples == 0

    out = await cli_status(app, capsys)
    assert "backlog:" in out and "last error:" in out and "lost: 0 samples" in out
    line = uplink_line(app)
    assert line.startswith("uplink ") and "backlog" in line and f"127.0.0.1:{refusing_port}" in line
    scraped = generate_latest(app.metrics.registry).decode()
    assert "linebridge_uplink_backlog_samples" in scraped
    assert 'linebridge_uplink_lost_samples_total{reason="budget"} 0.0' in scraped


def test_mqtt_flag_enables_the_uplink_or_names_the_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enabled = with_broker(UplinkConfig(), "mqtt://broker.plant:1884")
    assert enabled.enabled and enabled.host == "broker.plant" and enabled.port == 1884
    with pytest.raises(ConfigError, match="--mqtt: expected mqtt://"):
        with_broker(UplinkConfig(), "http://broker")
    config = tmp_path / "bridge.yaml"
    config.write_text(yaml.safe_dump({"bridge": {"id": "x"}}))
    assert main(["run", "-c", str(config), "--check", "--mqtt", "mqtt://127.0.0.1:1883"]) == 0
    assert main(["run", "-c", str(config), "--check", "--mqtt", "tcp://127.0.0.1"]) == 2
    assert "--mqtt: expected mqtt://HOST:PORT" in capsys.readouterr().err
