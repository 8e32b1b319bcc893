"""The simulated cell PLC: its deterministic behaviour, its Modbus face, its CLI and its mDNS advert."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusTcpClient
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from linebridge.drivers.base import MdnsService, Unavailable
from linebridge.drivers.modbus.driver import ModbusDriver
from linebridge.drivers.modbus.plc_model import PART_SPACING, CellPlcModel, Mode
from linebridge.drivers.modbus.simulator import CellPlcSimulator, bench_map
from tests.modbus_helpers import make_driver, with_aliases

ROOT = Path(__file__).parents[1]


def run(model: CellPlcModel, seconds: float, dt: float = 0.05) -> None:
    for _ in range(round(seconds / dt)):
        model.step(dt)


def test_same_seed_same_run_other_seed_other_run() -> None:
    runs = []
    for seed in (5, 5, 6):
        model, trace = CellPlcModel(seed=seed, speed=2.0), []
        for _ in range(600):
            run(model, 0.5)
            trace.append(model.values())
        runs.append(trace)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_parts_arrive_while_the_conveyor_runs() -> None:
    model = CellPlcModel(jam_probability=0.0, speed=1.0)
    model.light_curtain_clear = True
    run(model, 4.0)
    assert model.part_count == pytest.approx(4.0 / PART_SPACING, abs=1)
    assert model.distance == pytest.approx(4.0, abs=0.06)
    assert 0.3 < model.values()["cell/cycle_time"] < 0.5
    model.write("conveyor/running", False)
    count = model.part_count
    run(model, 2.0)
    assert model.part_count == count and not model.running


def test_a_jam_stops_the_conveyor_until_acknowledged() -> None:
    model = CellPlcModel(jam_probability=1.0, speed=2.0)
    run(model, 0.5)
    assert model.jam and not model.running
    assert model.values()["cell/fault"] and not model.values()["cell/ready"]
    count = model.part_count
    run(model, 1.0)
    assert model.part_count == count
    model.jam_probability = 0.0
    model.write("conveyor/jam_reset", True)
    run(model, 0.1)
    assert not model.jam and not model.jam_reset
    assert model.running, "in auto mode the PLC restarts a conveyor that a jam had stopped"


def test_jams_happen_now_and_then_and_clear() -> None:
    model = CellPlcModel(seed=3, speed=2.0)
    jams, was_jammed = 0, False
    for _ in range(6000):  # 5 minutes
        model.step(0.05)
        jams += model.jam and not was_jammed
        was_jammed = model.jam
    assert jams >= 2 and not (model.jam and model.part_count < 100)


def test_maintenance_opens_the_door_and_stops_the_conveyor() -> None:
    model = CellPlcModel(jam_probability=0.0)
    model.write("cell/mode", Mode.MAINTENANCE)
    run(model, 0.1)
    assert not model.door_closed and not model.running and not model.values()["cell/ready"]
    model.write("cell/mode", Mode.AUTO)
    run(model, 0.1)
    assert model.door_closed and model.running


def test_the_plc_refuses_bad_values() -> None:
    model = CellPlcModel()
    assert model.check("conveyor/speed", 2.5) == 3
    assert model.check("conveyor/speed", math.nan) == 3
    assert model.check("conveyor/speed", -0.1) == 3
    assert model.check("cell/mode", 5) == 3
    assert model.check("cell/mode", Mode.MANUAL) is None
    assert model.check("conveyor/speed", 1.0) is None


@pytest.fixture
async def sim() -> AsyncIterator[CellPlcSimulator]:
    simulator = CellPlcSimulator(units=(1, 2))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def client(sim: CellPlcSimulator) -> AsyncIterator[AsyncModbusTcpClient]:
    modbus = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.5, retries=0)
    assert await modbus.connect()
    yield modbus
    modbus.close()


async def test_serves_the_map_over_modbus(sim: CellPlcSimulator, client: AsyncModbusTcpClient) -> None:
    assert sim.port > 0 and sim.endpoint == f"modbus+tcp://127.0.0.1:{sim.port}"
    coils = await client.read_coils(0, count=2, device_id=1)
    assert coils.bits[:2] == [True, False]
    inputs = await client.read_discrete_inputs(0, count=4, device_id=1)
    assert inputs.bits[:2] == [True, True]
    holding = await client.read_holding_registers(0, count=12, device_id=1)
    assert client.convert_from_registers(holding.registers[0:2], client.DATATYPE.FLOAT32) == 0.5
    assert client.convert_from_registers(holding.registers[4:12], client.DATATYPE.STRING) == "PART-A"


async def test_writes_reach_the_model_and_bad_ones_are_refused(
    sim: CellPlcSimulator, client: AsyncModbusTcpClient
) -> None:
    assert not (await client.write_register(2, Mode.MANUAL, device_id=2)).isError()
    assert (sim.models[2].mode, sim.models[1].mode) == (Mode.MANUAL, Mode.AUTO)
    refused = await client.write_register(2, 5, device_id=1)
    assert refused.isError() and refused.exception_code == 3
    speed = client.convert_to_registers(9.0, client.DATATYPE.FLOAT32)
    assert (await client.write_registers(0, speed, device_id=1)).exception_code == 3
    assert sim.models[1].speed == 0.5
    assert not (await client.write_coil(0, False, device_id=1)).isError()
    assert sim.models[1].running is False


async def test_protocol_errors(sim: CellPlcSimulator, client: AsyncModbusTcpClient) -> None:
    beyond = await client.read_holding_registers(100, count=1, device_id=1)
    assert beyond.isError() and beyond.exception_code == 2
    missing = await client.read_holding_registers(0, count=1, device_id=9)
    assert missing.isError() and missing.exception_code == 11


async def test_a_muted_plc_stops_answering_and_comes_back(sim: CellPlcSimulator) -> None:
    driver = make_driver(sim.endpoint, timeout=0.2)
    signals = with_aliases((await driver.connect()).signals)
    try:
        sim.set_responding(False)
        with pytest.raises(Unavailable, match="did not answer"):
            await driver.read(signals[:1])
        sim.set_responding(True)
        await driver.close()
        await driver.connect()
        assert len((await driver.read(signals)).values) == len(signals)
    finally:
        await driver.close()


async def _start_cli(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "linebridge.drivers.modbus.simulator",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_cli_prints_ready_serves_and_stops_cleanly(signum: int) -> None:
    process = await _start_cli("--name", "plc-cli", "--port", "0", "--unit", "1", "--unit", "2", "--no-mdns")
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode()
        assert line.startswith("READY modbus+tcp://127.0.0.1:")
        driver = make_driver(line.split()[1], unit=2)
        description = await driver.connect()
        assert description.identity.endswith("/2")
        await driver.close()
        process.send_signal(signum)
        async with asyncio.timeout(30):
            out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert b"Traceback" not in err and out == b""
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_advertised_over_mdns_and_discoverable() -> None:
    name = f"plc-{uuid.uuid4().hex[:8]}"
    simulator = CellPlcSimulator(name=name, units=(4,), mdns=True)
    await simulator.start()
    zeroconf = AsyncZeroconf(interfaces=["127.0.0.1"])
    try:
        info = AsyncServiceInfo("_modbus._tcp.local.", f"{name}._modbus._tcp.local.")
        assert await info.async_request(zeroconf.zeroconf, 5000)
        properties = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
        assert properties == {"unit": "4", "map": "cell-plc"} and info.port == simulator.port
        found = ModbusDriver.from_mdns(
            MdnsService("_modbus._tcp.local.", name, info.parsed_addresses()[0], info.port or 0, properties)
        )
        driver = make_driver(found.endpoint, found.device_id, **found.options)
        try:
            assert (await driver.connect()).identity == f"modbus:127.0.0.1:{simulator.port}/4"
        finally:
            await driver.close()
    finally:
        await zeroconf.async_close()
        await simulator.stop()


async def test_benchmark_block_is_read_in_one_request() -> None:
    simulator = CellPlcSimulator(bench_registers=100)
    await simulator.start()
    driver = make_driver(simulator.endpoint, map=bench_map(100, interval_ms=100))
    try:
        signals = with_aliases((await driver.connect()).signals)
        assert (driver.plan.requests_per_cycle, driver.plan.naive_requests_per_cycle) == (1, 100)
        first = (await driver.read(signals)).values
        assert all((b - a) & 0xFFFF == 1 for a, b in zip(first, first[1:], strict=False))
        await asyncio.sleep(3 * simulator.tick)
        assert (await driver.read(signals)).values != first, "the block changes every PLC scan"
    finally:
        await driver.close()
        await simulator.stop()
