"""The CLI client commands and the examples, run as processes against a bridge on loopback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from linebridge.cli.healthcheck import check
from linebridge.model import DeviceState
from tests.conftest import sim_device, wait_for_state

ROOT = Path(__file__).resolve().parent.parent


async def run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, out.decode(), err.decode()


async def cli(app, *args: str) -> tuple[int, str, str]:
    return await run(
        sys.executable, "-m", "linebridge.cli", *args[:1], "--target", app.api_address, *args[1:]
    )


async def online_bridge(start_bridge):
    app = await start_bridge([sim_device("sim-1", signals=2, rate_hz=50)])
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    return app


async def test_devices_info_read_write_call_stop(start_bridge):
    app = await online_bridge(start_bridge)
    code, out, _ = await cli(app, "devices", "--detail")
    assert code == 0 and "sim-1" in out and "ONLINE" in out and "method Echo(text: string)" in out
    code, out, _ = await cli(app, "info")
    assert code == 0 and "bridge test-bridge" in out and "1 online" in out
    code, out, _ = await cli(app, "write", "sim-1/setpoint=7.5", "sim-1/label=hello")
    assert code == 0 and "SUCCEEDED" in out
    code, out, _ = await cli(app, "read", "--from-device", "sim-1/setpoint", "sim-1/label")
    assert code == 0 and "sim-1/setpoint  7.5 mm/s" in out and "sim-1/label  hello" in out
    code, out, _ = await cli(app, "call", "sim-1", "Echo", "ping")
    assert code == 0 and "-> ping" in out
    code, out, _ = await cli(app, "stop", "sim-1")
    assert code == 0 and app.driver_of("sim-1").stopped == 1
    code, out, _ = await cli(app, "watch", "sim-1/values/*", "--count", "5")
    assert code == 0 and len([line for line in out.splitlines() if "sim-1/values/" in line]) == 5


async def test_cli_errors_are_clear(start_bridge):
    app = await online_bridge(start_bridge)
    code, _, err = await cli(app, "write", "sim-1/setpoint=fast")
    assert code == 1 and "expected a number, got 'fast'" in err and "Traceback" not in err
    code, _, err = await cli(app, "read", "ghost/x")
    assert code == 1 and "NOT_FOUND" in err
    code, _, err = await cli(app, "watch", "sim-1//x", "--count", "1")
    assert code == 1 and "INVALID_ARGUMENT" in err
    code, _, err = await run(sys.executable, "-m", "linebridge.cli", "devices", "--target", "127.0.0.1:1")
    assert code == 1 and "cannot reach a bridge at 127.0.0.1:1" in err


async def test_examples_run(start_bridge):
    app = await online_bridge(start_bridge)
    code, out, err = await run(
        sys.executable,
        "examples/integrator.py",
        "--target",
        app.api_address,
        "--path",
        "sim-1/values/0",
        "--count",
        "3",
    )
    assert code == 0, err
    assert "1 device(s)" in out and out.count("sim-1/values/0 = ") == 3
    code, out, err = await run(
        sys.executable,
        "examples/cloud_commander.py",
        "--target",
        app.api_address,
        "--device",
        "sim-1",
        "--method",
        "Echo",
        "--arg",
        "hello",
        "--key",
        "k1",
    )
    assert code == 0, err
    assert "QUEUED" in out and "SUCCEEDED" in out and "hello" in out
    code, out, _ = await run(
        sys.executable,
        "examples/cloud_commander.py",
        "--target",
        app.api_address,
        "--device",
        "sim-1",
        "--write",
        "setpoint=5000",
    )
    assert code == 1 and "FAILED" in out


async def test_healthcheck(start_bridge):
    app = await online_bridge(start_bridge)
    assert await asyncio.to_thread(check, app.api_address)
    assert not await asyncio.to_thread(check, "127.0.0.1:1", 0.5)


async def test_notebook_quicklook_saves_a_plot(start_bridge, tmp_path):
    app = await online_bridge(start_bridge)
    out = tmp_path / "quicklook.png"
    code, stdout, err = await run(
        sys.executable,
        "examples/notebook_quicklook.py",
        "--target",
        app.api_address,
        "--path",
        "sim-1/values/*",
        "--seconds",
        "1",
        "--out",
        str(out),
    )
    assert code == 0, err
    assert "x 2 signals" in stdout and "'sim-1/values/0': 'float64'" in stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_examples_use_only_the_client_sdk():
    for example in (ROOT / "examples").glob("*.py"):
        imports = [
            line for line in example.read_text().splitlines() if "import" in line and "linebridge" in line
        ]
        assert all(line.startswith("from linebridge.client import") for line in imports), (example, imports)
