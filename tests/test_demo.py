"""`linebridge demo` as a user runs it: simulators discovered, live table, clean stop on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import psutil
import pytest

DEMO = [sys.executable, "-m", "linebridge.cli", "demo", "--grpc", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]
CELL = {"robot-1": "opcua", "robot-2": "opcua", "robot-3": "opcua", "ur-1": "ur", "plc-1": "modbus"}


def online_devices(text: str) -> dict[str, str]:
    """DEVICE -> DRIVER for every ONLINE row of the last table printed."""
    table = text.rsplit("Linebridge demo - bridge", 1)[-1]
    return {m[1]: m[2] for m in re.finditer(r"^(\S+)\s+ONLINE\s+(\w+)\s", table, re.MULTILINE)}


def sim_pids(text: str) -> list[int]:
    found = re.findall(r"simulators \d+ \(pids ([\d, ]+)\)", text)
    return [int(p) for p in found[-1].split(", ")] if found else []


def gone(pids: list[int]) -> bool:
    return not [
        p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]


async def test_demo_discovers_the_cell_and_stops_by_itself():
    process = await asyncio.create_subprocess_exec(
        *DEMO, "--duration", "10", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    text = out.decode()
    assert process.returncode == 0, err.decode()
    assert CELL.items() <= online_devices(text).items(), text[-3000:]
    assert "Traceback" not in err.decode()
    pids = sim_pids(text)
    assert len(pids) == len(CELL) and gone(pids)
    assert "demo stopped: bridge and simulators are gone" in text


async def test_ctrl_c_stops_everything_cleanly():
    # A terminal's Ctrl-C sends SIGINT to the whole foreground process group: bridge and simulators.
    process = await asyncio.create_subprocess_exec(
        *DEMO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None
    text = ""
    try:
        async with asyncio.timeout(60):
            while not CELL.items() <= online_devices(text).items():
                text += (await process.stdout.read(4096)).decode()
        pids = sim_pids(text)
        os.killpg(process.pid, signal.SIGINT)
        rest, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    assert "Traceback" not in err.decode(), err.decode()
    assert "demo stopped" in rest.decode()
    assert len(pids) == len(CELL) and gone(pids)


@pytest.mark.timeout(150)
async def test_demo_shows_an_early_warning_in_its_first_minute():
    # robot-1 runs with --fault motor-drift: its axis 3 motor heats from 20 s on, and the shipped CUSUM
    # rule warns long before the controller's over-temperature limit (about 17 minutes later).
    process = await asyncio.create_subprocess_exec(
        *DEMO,
        "--robots",
        "1",
        "--no-ur",
        "--no-plc",
        "--duration",
        "55",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    text = out.decode()
    assert process.returncode == 0, err.decode()
    warnings = re.findall(r"^\s+\d+\s+ACTIVE\s+robot-1/motor_3_drift\s+EARLY WARNING .*$", text, re.MULTILINE)
    assert warnings, text[-3000:]
    assert "robot-1/motor_over_temperature" not in text  # the hi limit is still far away
