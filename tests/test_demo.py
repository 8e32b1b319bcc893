"""`linebridge demo` as a user runs it: simulators discovered, the uplink publishing, a quiet Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
import tempfile

import grpc
import pytest

from linebridge.api import pb
from linebridge.cli.demo_broker import find_mosquitto
from linebridge.cli.runner import QuietShutdown, quiet_shutdown, stop_event
from linebridge.client.raw import RawClient
from tests.process_helpers import alive, descendants, kill_tree, unique_suffix

# The demo's own waits (cell online, uplink online, shutdown) reach 90 s on a loaded machine: more than
# the suite's 60 s default, so these tests carry their own limit.
pytestmark = pytest.mark.timeout(240)

DEMO = [sys.executable, "-m", "linebridge.cli", "demo", "--grpc", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]
CELL = [("robot-1", "opcua"), ("robot-2", "opcua"), ("robot-3", "opcua"), ("ur-1", "ur"), ("plc-1", "modbus")]
NOISE = re.compile(r"WARNING|ERROR|CRITICAL|Traceback|offline:|retrying")
FOREIGN = "matches no discovery.auto_approve rule"


class Demo:
    """One demo run's names: a suffix of its own, so other demos on this machine (another worker's, or a
    failed test's simulators still announced on loopback mDNS) are not taken for this demo's devices."""

    def __init__(self) -> None:
        self.suffix = unique_suffix("t")
        self.argv = [*DEMO, "--suffix", self.suffix]
        self.cell = {f"{name}-{self.suffix}": driver for name, driver in CELL}


@pytest.fixture
def demo() -> Demo:
    return Demo()


def last_table(text: str) -> str:
    return text.rsplit("Linebridge demo - bridge", 1)[-1]


def online_devices(text: str) -> dict[str, str]:
    """DEVICE -> DRIVER for every ONLINE row of the last table printed."""
    return {m[1]: m[2] for m in re.finditer(r"^(\S+)\s+ONLINE\s+(\w+)\s", last_table(text), re.MULTILINE)}


def ever_online(text: str) -> dict[str, str]:
    """DEVICE -> DRIVER for every device ONLINE in any table printed (a slow moment may flip one later)."""
    return {m[1]: m[2] for m in re.finditer(r"^(\S+)\s+ONLINE\s+(\w+)\s", text, re.MULTILINE)}


def sim_pids(text: str) -> list[int]:
    found = re.findall(r"simulators \d+ \(pids ([\d, ]+)\)", text)
    return [int(p) for p in found[-1].split(", ")] if found else []


def grpc_address(text: str) -> str:
    return re.findall(r"gRPC (127\.0\.0\.1:\d+)", text)[-1]


def gone(pids: list[int]) -> bool:
    return not alive(pids)


def noise(text: str) -> list[str]:
    """Warning-like lines, except about other helpers' devices on loopback mDNS (not ours to approve)."""
    return [line for line in text.splitlines() if NOISE.search(line) and FOREIGN not in line]


async def test_without_a_broker_the_demo_says_once_that_it_buffers_and_stops_by_itself(demo: Demo):
    with tempfile.TemporaryDirectory() as nowhere:
        process = await asyncio.create_subprocess_exec(
            *demo.argv,
            "--duration",
            "10",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "LINEBRIDGE_MOSQUITTO_SEARCH": nowhere},  # no mosquitto anywhere
        )
        out, err = await finish(process, 90)
    text, errors = out.decode(), err.decode()
    assert process.returncode == 0, errors
    assert demo.cell.items() <= ever_online(text).items(), text[-3000:]
    assert text.count("buffers everything to disk") == 1
    assert "uplink offline (no broker, buffering to disk)" in last_table(text)
    # No invented broker address, no uplink warning; (a device slow under load may warn: not this test's point)
    uplink_noise = [line for line in errors.splitlines() if re.search(r"uplink|mqtt://|Traceback", line)]
    assert uplink_noise == [] and "unavailable" not in text, errors
    pids = sim_pids(text)
    assert len(pids) == len(demo.cell) and gone(pids)
    assert "demo stopped: bridge and simulators are gone" in text


async def finish(process: asyncio.subprocess.Process, limit: float) -> tuple[bytes, bytes]:
    """The demo's stdout and stderr once it ends by itself; past `limit` seconds, it and all it started are
    killed and the test fails with what it printed so far."""
    assert process.stdout is not None and process.stderr is not None
    out, err = Reader(process.stdout), Reader(process.stderr)
    try:
        await asyncio.wait_for(asyncio.gather(process.wait(), out.task, err.task), limit)
    except TimeoutError:
        await kill_tree(process)
        raise AssertionError(
            f"the demo did not end within {limit} s:\n{out.text[-3000:]}\n{err.text[-3000:]}"
        ) from None
    return out.text.encode(), err.text.encode()


class Reader:
    """Collects a stream in the background, so the test can mark where the signal was sent."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.text = ""
        self.task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(4096):
            self.text += chunk.decode(errors="replace")


async def uplink_online(target: str) -> pb.bridge.GetUplinkStatusResponse | None:
    """The uplink's status when it is ONLINE and has published samples, else None.

    A bridge still starting on a loaded machine may not finish the HTTP/2 handshake in time (seen once:
    UNAVAILABLE "timed out before receiving SETTINGS frame"): that is "not yet", asked again by the caller
    within its own limit."""
    try:
        async with RawClient(target) as client:
            status = await client.bridge.GetUplinkStatus(pb.bridge.GetUplinkStatusRequest(), timeout=10)
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return None
        raise
    online = status.state == pb.bridge.UPLINK_STATE_ONLINE and status.published_samples > 0
    return status if online else None


async def wait_until_running(
    process: asyncio.subprocess.Process, out: Reader, err: Reader, cell: dict[str, str]
) -> pb.bridge.GetUplinkStatusResponse:
    """Every device ONLINE in the table, the uplink ONLINE with samples published (gRPC), and in the table."""
    status = None
    try:
        async with asyncio.timeout(90):
            while True:
                assert process.returncode is None, out.text[-3000:] + err.text[-3000:]
                if cell.items() <= online_devices(out.text).items():
                    status = status or await uplink_online(grpc_address(out.text))
                    if status is not None and "uplink online" in last_table(out.text):
                        return status
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"not running after 90 s:\n{out.text[-3000:]}\n{err.text[-3000:]}") from None


@pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto (make test installs it)")
async def test_ctrl_c_with_the_uplink_online_stops_everything_quietly(demo: Demo):
    # A terminal's Ctrl-C sends SIGINT to the whole foreground process group.
    process = await asyncio.create_subprocess_exec(
        *demo.argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = Reader(process.stdout), Reader(process.stderr)
    children: list[int] = []
    try:
        status = await wait_until_running(process, out, err, demo.cell)
        children = descendants(process.pid)
        table = last_table(out.text)
        assert status.broker.startswith("mqtt://127.0.0.1:") and f"Sparkplug B to {status.broker}" in table
        broker_pid = int(re.findall(r"own mosquitto pid (\d+)", table)[-1])
        assert set(sim_pids(out.text)) | {broker_pid} <= set(children)
        seen_out, seen_err = len(out.text), len(err.text)
        os.killpg(process.pid, signal.SIGINT)
        try:
            await asyncio.wait_for(asyncio.gather(process.wait(), out.task, err.task), 60)
        except TimeoutError:
            left = alive([process.pid, *children])
            raise AssertionError(
                f"still running 60 s after Ctrl-C: {left}\n{out.text[-3000:]}\n{err.text[-3000:]}"
            ) from None
    finally:
        # A failed run must not leave the bridge, its simulators or its broker behind (each child has a
        # process group of its own, so they outlive the demo).
        if process.returncode is None or alive(children):
            await kill_tree(process, children)
    after = out.text[seen_out:] + err.text[seen_err:]
    assert process.returncode == 0, err.text
    assert noise(after) == [], after
    assert "demo stopped: bridge and simulators are gone" in out.text[seen_out:]
    assert len(children) >= len(demo.cell) + 1 and gone(children)


class Collect(logging.Handler):
    """A root handler that keeps the messages that reach it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_shutdown_drops_connection_warnings_and_keeps_errors_and_the_rest():
    collect = Collect()
    logging.getLogger().addHandler(collect)
    try:
        with quiet_shutdown():
            logging.getLogger("asyncua.client.ua_client").warning("BadNoSubscription")
            logging.getLogger("linebridge.devices.sessions").warning("device x offline")
            logging.getLogger("linebridge.devices.sessions").error("session crashed")
            logging.getLogger("linebridge.uplink.sparkplug").warning("drain incomplete")
        logging.getLogger("asyncua.client.ua_client").warning("after the stop")
    finally:
        logging.getLogger().removeHandler(collect)
    assert collect.messages == ["session crashed", "drain incomplete", "after the stop"]


async def test_the_signal_itself_quiets_the_log_before_the_loop_stops():
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    quiet, collect = QuietShutdown(), Collect()
    logging.getLogger().addHandler(collect)
    try:
        stop = stop_event(quiet)
        os.kill(os.getpid(), signal.SIGTERM)
        logging.getLogger("linebridge.devices.sessions").warning("device x offline")  # loop not yet run
        await asyncio.wait_for(stop.wait(), 5)
    finally:
        quiet.remove()
        logging.getLogger().removeHandler(collect)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert collect.messages == []


async def test_demo_shows_an_early_warning_in_its_first_minute(demo: Demo):
    # robot-1 runs with --fault motor-drift: its axis 3 motor heats from 20 s on, and the shipped CUSUM
    # rule warns long before the controller's over-temperature limit (about 17 minutes later).
    process = await asyncio.create_subprocess_exec(
        *demo.argv,
        "--robots",
        "1",
        "--no-ur",
        "--no-plc",
        "--duration",
        "55",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await finish(process, 150)
    text = out.decode()
    assert process.returncode == 0, err.decode()
    robot = f"robot-1-{demo.suffix}"
    pattern = rf"^\s+\d+\s+ACTIVE\s+{re.escape(robot)}/motor_3_drift\s+EARLY WARNING .*$"
    assert re.findall(pattern, text, re.MULTILINE), text[-3000:]
    assert f"{robot}/motor_over_temperature" not in text  # the hi limit is still far away
