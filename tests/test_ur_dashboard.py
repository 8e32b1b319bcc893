"""Dashboard server: reply parsing, the command table, and the client on real TCP."""

from __future__ import annotations

import asyncio

import pytest

from linebridge.drivers.base import DeviceError, InvalidArgument, Unavailable, ValueType
from linebridge.drivers.ur import dashboard as dash
from linebridge.drivers.ur.dashboard import COMMANDS_BY_METHOD, DashboardClient


def test_parse_robot_mode_and_safety_status():
    assert dash.parse_robot_mode("Robotmode: RUNNING") == "RUNNING"
    assert dash.parse_robot_mode("Robotmode: power_off") == "POWER_OFF"
    assert dash.parse_safety_status("Safetystatus: PROTECTIVE_STOP") == "PROTECTIVE_STOP"
    assert dash.parse_safety_status("Safetymode: NORMAL") == "NORMAL"  # pre-5.4 command
    with pytest.raises(DeviceError, match="expected 'robotmode"):
        dash.parse_robot_mode("could not understand: 'robotmode'")


def test_parse_booleans_and_program_replies():
    assert dash.parse_bool("true") is True and dash.parse_bool("false") is False
    assert dash.parse_running("Program running: true") is True
    assert dash.parse_running("Robot running: False") is False  # CB-series wording
    assert dash.parse_program_state("PLAYING /programs/pick.urp") == ("PLAYING", "/programs/pick.urp")
    assert dash.parse_program_state("STOPPED <unnamed>") == ("STOPPED", "<unnamed>")
    assert dash.parse_loaded_program("Loaded program: /programs/a.urp") == "/programs/a.urp"
    assert dash.parse_loaded_program("No program loaded") == ""
    with pytest.raises(DeviceError):
        dash.parse_bool("maybe")
    with pytest.raises(DeviceError):
        dash.parse_program_state("RUNNING x")


def test_success_wording_and_failure_message():
    play, load = COMMANDS_BY_METHOD["play"], COMMANDS_BY_METHOD["load_program"]
    assert dash.check_success(play, "Starting program") == "Starting program"
    assert dash.check_success(load, "Loading program: /programs/a.urp").endswith("a.urp")
    with pytest.raises(DeviceError, match="dashboard 'play' failed: Failed to execute: play"):
        dash.check_success(play, "Failed to execute: play")
    with pytest.raises(DeviceError, match="'load' failed: File not found: x.urp"):
        dash.check_success(load, "File not found: x.urp")


def test_command_text_and_method_specs():
    load = COMMANDS_BY_METHOD["load_program"]
    assert load.text("/programs/a.urp") == "load /programs/a.urp"
    with pytest.raises(InvalidArgument):
        load.text("a.urp\nstop")
    with pytest.raises(InvalidArgument):
        load.text("")
    specs = {s.name: s for s in dash.method_specs()}
    assert specs["load_program"].inputs[0].name == "program"
    assert specs["power_on"].outputs[0].name == "reply"
    assert specs["remote_control"].outputs[0].value_type is ValueType.BOOL
    assert specs["unlock_protective_stop"].address.command == "unlock protective stop"


async def test_client_against_simulated_dashboard(ur_sim):
    client = DashboardClient("127.0.0.1", ur_sim.dashboard_port, timeout=2.0)
    await client.connect()
    try:
        assert await client.run(COMMANDS_BY_METHOD["robot_mode"]) == "POWER_OFF"
        assert await client.run(COMMANDS_BY_METHOD["power_on"]) == "Powering on"
        assert await client.query("is in remote control") is True
        with pytest.raises(DeviceError, match="File not found: /nope.urp"):
            await client.run(COMMANDS_BY_METHOD["load_program"], "/nope.urp")
        assert await client.request("hello") == "could not understand: 'hello'"
    finally:
        await client.close()
        await client.close()  # idempotent


async def _raw_server(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_wrong_greeting_is_not_a_ur_dashboard():
    async def handler(reader, writer):
        writer.write(b"SSH-2.0-OpenSSH\n")
        await reader.read()
        writer.close()

    server, port = await _raw_server(handler)
    try:
        client = DashboardClient("127.0.0.1", port, timeout=2.0)
        with pytest.raises(DeviceError, match="not a UR Dashboard server"):
            await client.connect()
    finally:
        server.close()
        await server.wait_closed()


async def test_connection_closed_mid_reply_is_unavailable():
    async def handler(reader, writer):
        writer.write(dash.GREETING.encode() + b"\n")
        await reader.readline()
        writer.write(b"Robotmode: RUN")  # no newline, then hang up
        writer.close()

    server, port = await _raw_server(handler)
    try:
        client = DashboardClient("127.0.0.1", port, timeout=2.0)
        await client.connect()
        with pytest.raises(Unavailable, match="closed the connection"):
            await client.request("robotmode")
        with pytest.raises(Unavailable, match="closed"):
            await client.request("robotmode")
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_reply_to_a_cancelled_request_is_not_taken_for_the_next_one():
    release = asyncio.Event()

    async def handler(reader, writer):
        writer.write(dash.GREETING.encode() + b"\n")
        first = await reader.readline()
        await release.wait()  # answer the first command only after the client gave up on it
        writer.write(b"reply to " + first)
        second = await reader.readline()
        writer.write(b"reply to " + second)
        await writer.drain()
        await reader.read()
        writer.close()

    server, port = await _raw_server(handler)
    client = DashboardClient("127.0.0.1", port, timeout=2.0)
    try:
        await client.connect()
        pending = asyncio.create_task(client.request("first"))
        await asyncio.sleep(0.05)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        release.set()
        assert await client.request("second") == "reply to second"
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
