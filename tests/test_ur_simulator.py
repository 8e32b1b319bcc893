"""The UR simulator speaks the real protocols: checked with raw TCP clients, not the driver."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import struct
import sys

import pytest
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from linebridge.drivers.ur.catalog import RobotMode, RuntimeState, SafetyMode
from linebridge.drivers.ur.dashboard import GREETING, LOCAL_CONTROL_REPLY
from linebridge.drivers.ur.driver import SERVICE_TYPE, UrDriver
from linebridge.drivers.ur.kinematics import pose_error, pose_of
from linebridge.drivers.ur.options import UrOptions, parse_endpoint
from linebridge.drivers.ur.simulator import SimConfig, UrSimulator

TARGET_Q = (0.4, -1.3, 1.4, -1.6, -1.5, 0.3)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RawRtde:
    """A hand-rolled RTDE client: struct-packed requests, header-by-header reads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RawRtde:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, kind: str, payload: bytes = b"") -> None:
        self.writer.write(struct.pack(">HB", 3 + len(payload), ord(kind)) + payload)

    async def receive(self) -> tuple[str, bytes]:
        size, kind = struct.unpack(">HB", await self.reader.readexactly(3))
        return chr(kind), await self.reader.readexactly(size - 3)

    async def answer(self, kind: str) -> bytes:
        while True:
            got, payload = await asyncio.wait_for(self.receive(), 2.0)
            if got == kind:
                return payload
            assert got in "UM", f"unexpected package {got!r}"

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def test_rtde_handshake_recipe_and_data(ur_sim):
    client = await RawRtde.open(ur_sim.rtde_port)
    try:
        client.send("V", struct.pack(">H", 2))
        assert await client.answer("V") == b"\x01"
        client.send("v")
        assert struct.unpack(">IIII", await client.answer("v"))[0] == 5
        client.send("O", struct.pack(">d", 500.0) + b"timestamp,actual_q,no_such_variable")
        answer = await client.answer("O")
        assert answer[0] == 0 and answer[1:] == b"DOUBLE,VECTOR6D,NOT_FOUND"
        client.send("S")
        assert await client.answer("S") == b"\x00"  # no valid recipe: start refused
        client.send("O", struct.pack(">d", 500.0) + b"timestamp,actual_q,robot_mode,runtime_state")
        answer = await client.answer("O")
        assert answer[0] >= 1 and answer[1:] == b"DOUBLE,VECTOR6D,INT32,UINT32"
        client.send("S")
        assert await client.answer("S") == b"\x01"
        rows = [struct.unpack(">BdddddddiI", await client.answer("U")) for _ in range(50)]
        stamps = [r[1] for r in rows]
        assert all(r[0] == answer[0] for r in rows)
        assert all(math.isclose(b - a, 0.002, abs_tol=1e-9) for a, b in zip(stamps, stamps[1:], strict=False))
        assert rows[-1][8] == RobotMode.POWER_OFF and rows[-1][9] == RuntimeState.STOPPED
        client.send("P")
        assert await client.answer("P") == b"\x01"
    finally:
        await client.close()


async def test_rtde_lower_frequency_and_protocol_v1(ur_sim):
    client = await RawRtde.open(ur_sim.rtde_port)
    try:
        client.send("O", struct.pack(">d", 125.0) + b"timestamp")  # still v1: names only
        assert (await client.answer("O"))[1:] == b"NOT_FOUND"  # 8 frequency bytes read as a name
        client.send("V", struct.pack(">H", 2))
        await client.answer("V")
        client.send("O", struct.pack(">d", 125.0) + b"timestamp")
        assert (await client.answer("O"))[1:] == b"DOUBLE"
        client.send("S")
        await client.answer("S")
        stamps = [struct.unpack(">Bd", await client.answer("U"))[1] for _ in range(5)]
        assert [round(b - a, 6) for a, b in zip(stamps, stamps[1:], strict=False)] == [0.008] * 4
        client.send("O", struct.pack(">d", 1000.0) + b"timestamp")
        assert (await client.answer("O"))[0] == 0  # above the 500 Hz control rate
    finally:
        await client.close()


async def test_rtde_malformed_request_closes_the_connection(ur_sim):
    client = await RawRtde.open(ur_sim.rtde_port)
    client.writer.write(b"\x00\x01V")  # size below the header
    assert await asyncio.wait_for(client.reader.read(), 2.0) == b""
    await client.close()


async def dashboard(ur_sim):
    reader, writer = await asyncio.open_connection("127.0.0.1", ur_sim.dashboard_port)
    assert (await reader.readline()).decode().strip() == GREETING

    async def ask(command: str) -> str:
        writer.write(command.encode() + b"\n")
        return (await asyncio.wait_for(reader.readline(), 2.0)).decode().strip()

    return ask, writer


async def wait_for_reply(ask, command: str, expected: str) -> None:
    for _ in range(200):
        if await ask(command) == expected:
            return
        await asyncio.sleep(0.01)
    assert await ask(command) == expected


async def test_dashboard_power_program_lifecycle(ur_sim):
    ask, writer = await dashboard(ur_sim)
    try:
        assert await ask("robotmode") == "Robotmode: POWER_OFF"
        assert await ask("play") == "Failed to execute: play"
        assert await ask("power on") == "Powering on"
        await wait_for_reply(ask, "robotmode", "Robotmode: IDLE")
        assert await ask("brake release") == "Brake releasing"
        await wait_for_reply(ask, "robotmode", "Robotmode: RUNNING")
        assert await ask("load /programs/none.urp") == "File not found: /programs/none.urp"
        assert await ask("get loaded program") == "No program loaded"
        assert await ask("load /programs/pick.urp") == "Loading program: /programs/pick.urp"
        assert await ask("get loaded program") == "Loaded program: /programs/pick.urp"
        assert await ask("play") == "Starting program"
        await wait_for_reply(ask, "programState", "PLAYING /programs/pick.urp")
        assert await ask("running") == "Program running: true"
        assert await ask("pause") == "Pausing program"
        assert await ask("programState") == "PAUSED /programs/pick.urp"
        assert await ask("stop") == "Stopped"
        assert await ask("running") == "Program running: false"
        assert await ask("safetystatus") == "Safetystatus: NORMAL"
        assert await ask("close safety popup") == "closing safety popup"
        assert await ask("power off") == "Powering off"
        assert await ask("gibberish") == "could not understand: 'gibberish'"
        assert await ask("quit") == "Disconnected"
    finally:
        writer.close()


async def test_dashboard_refuses_control_in_local_mode_and_protective_stop_unlock(ur_sim):
    ask, writer = await dashboard(ur_sim)
    try:
        ur_sim.set_remote_control(False)
        assert await ask("is in remote control") == "false"
        assert await ask("power on") == LOCAL_CONTROL_REPLY
        assert await ask("robotmode") == "Robotmode: POWER_OFF"  # queries still answered
        ur_sim.set_remote_control(True)
        ur_sim.protective_stop()
        assert await ask("safetystatus") == "Safetystatus: PROTECTIVE_STOP"
        ur_sim.robot.unlock_delay = 60.0
        assert (await ask("unlock protective stop")).startswith("Cannot unlock protective stop until 5s")
        ur_sim.robot.unlock_delay = 0.0
        assert await ask("unlock protective stop") == "Protective stop releasing"
        assert await ask("safetystatus") == "Safetystatus: NORMAL"
    finally:
        writer.close()


async def running(ur_sim):
    ur_sim.robot.brake_release()
    for _ in range(300):
        if ur_sim.robot.robot_mode == RobotMode.RUNNING:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("simulated robot did not reach RUNNING")


async def send_script(ur_sim, text: str) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", ur_sim.secondary_port)
    writer.write(text.encode())
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def wait_stopped_after_script(ur_sim, count: int = 1):
    for _ in range(500):
        if len(ur_sim.scripts) >= count and ur_sim.robot.runtime_state == RuntimeState.STOPPED:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"script did not finish: {ur_sim.scripts}")


async def test_secondary_movej_moves_at_the_commanded_speed(ur_sim):
    await running(ur_sim)
    start_q, start_time = list(ur_sim.robot.q), ur_sim.robot.time
    await send_script(
        ur_sim, "def move():\n  movej([" + ", ".join(map(str, TARGET_Q)) + "], a=1.4, v=0.8)\nend\n"
    )
    await wait_stopped_after_script(ur_sim)
    assert ur_sim.scripts[0].accepted
    assert ur_sim.robot.q == pytest.approx(TARGET_Q, abs=1e-9)
    # Controller time is simulated: the move took the largest joint distance / 0.8 rad/s.
    expected = max(abs(a - b) for a, b in zip(start_q, TARGET_Q, strict=True)) / 0.8
    assert ur_sim.robot.time - start_time >= expected - 0.005


async def test_secondary_movel_reaches_the_pose(ur_sim):
    await running(ur_sim)
    target = (-0.40, -0.20, 0.40, 2.2, 2.2, 0.0)
    await send_script(ur_sim, "movel(p[-0.40, -0.20, 0.40, 2.2, 2.2, 0.0], a=1.2, v=0.5)\n")
    await wait_stopped_after_script(ur_sim)
    position, angle = pose_error(pose_of(ur_sim.robot.q), target)
    assert position < 1e-5 and angle < 1e-5
    assert ur_sim.robot.values["actual_TCP_pose"] == pytest.approx(target, abs=1e-5)


async def test_script_refused_when_not_ready_and_protective_stop_from_script(ur_sim):
    await send_script(ur_sim, "movej([0, 0, 0, 0, 0, 0], v=0.5)\n")
    await wait_stopped_after_script(ur_sim)
    assert ur_sim.scripts[0].accepted is False  # powered off: the controller does not run it
    await running(ur_sim)
    await send_script(ur_sim, "def stop_it():\n  protective_stop()\nend\n")
    for _ in range(200):
        if ur_sim.robot.safety_mode == SafetyMode.PROTECTIVE_STOP:
            break
        await asyncio.sleep(0.01)
    assert ur_sim.robot.safety_mode == SafetyMode.PROTECTIVE_STOP


async def test_advertised_over_mdns_with_ports_in_txt():
    simulator = UrSimulator(SimConfig(name="ur-mdns-1", mdns=True))
    await simulator.start()
    zc = AsyncZeroconf(interfaces=["127.0.0.1"])
    try:
        info = AsyncServiceInfo(SERVICE_TYPE, f"ur-mdns-1.{SERVICE_TYPE}")
        assert await info.async_request(zc.zeroconf, 3000)
        assert info.port == simulator.rtde_port
        assert info.properties[b"dashboard"] == str(simulator.dashboard_port).encode()
        assert info.properties[b"secondary"] == str(simulator.secondary_port).encode()
    finally:
        await zc.async_close()
        await simulator.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_cli_prints_ready_and_stops_cleanly(signum):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "linebridge.drivers.ur.simulator",
        "--name",
        "ur-cli",
        "--no-mdns",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
        assert line.startswith("READY ur://127.0.0.1?rtde=")
        address = parse_endpoint(line.split(" ", 1)[1], UrOptions())
        assert address.host == "127.0.0.1" and 0 not in (
            address.rtde_port,
            address.dashboard_port,
            address.secondary_port,
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", address.dashboard_port)
        assert (await reader.readline()).decode().strip() == GREETING
        writer.close()
    finally:
        process.send_signal(signum)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0
    assert b"Traceback" not in stderr


def test_driver_is_discoverable_by_the_advertised_type():
    assert SERVICE_TYPE in {m.service_type for m in UrDriver.discovery}
