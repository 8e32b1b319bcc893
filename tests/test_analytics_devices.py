"""Driver defaults against the real simulators: Modbus `alarm:` map entries and states, UR protective stop."""

from __future__ import annotations

import asyncio

import pytest

from linebridge.analytics import MachineState
from linebridge.drivers.modbus.plc_model import CellPlcModel
from linebridge.drivers.modbus.simulator import CellPlcSimulator, FaultPlan
from linebridge.model import DeviceState
from tests.conftest import wait_for_state


async def _until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_starve_fault_starves_the_conveyor_deterministically():
    model = CellPlcModel(seed=3, jam_probability=0.0)
    plan = FaultPlan(["starve"], seed=3)
    starved_at = None
    for step in range(600):  # 60 s at 0.1 s
        t = step * 0.1
        model.upstream_period = plan.upstream_period(t)
        model.step(0.1)
        if model.starved and starved_at is None:
            starved_at = t
    assert starved_at is not None and starved_at >= FaultPlan.STARVE_AFTER
    with pytest.raises(ValueError, match="unknown fault"):
        FaultPlan(["gremlins"], seed=0)


async def test_modbus_alarm_bits_and_cell_states(start_bridge):
    sim = CellPlcSimulator(seed=5)
    await sim.start()
    try:
        sim.models[1].jam_probability = 0.0
        app = await start_bridge(
            [{"id": "plc-a", "driver": "modbus", "endpoint": sim.endpoint, "options": {"map": "cell-plc"}}],
            analytics={"publish_interval_seconds": 0.1},
        )
        await wait_for_state(app, "plc-a", DeviceState.ONLINE)
        engine = app.analytics
        await _until(lambda: engine.devices["plc-a"].clock.state is MachineState.EXECUTE, what="EXECUTE")
        assert {"alarms/conveyor.jam/active", "oee/oee", "state/current"} <= set(
            app.registry.get("plc-a").signals
        )
        sim.models[1].jam = True
        sim.models[1]._jam_left = 60.0
        await _until(lambda: "plc-a/conveyor.jam" in app.alarms.alarms, what="the jam alarm")
        alarm = app.alarms.alarms["plc-a/conveyor.jam"]
        assert alarm.active and alarm.severity == 800 and alarm.message.startswith("Conveyor jam")
        await _until(lambda: engine.devices["plc-a"].clock.state is MachineState.HELD, what="HELD")
        sim.models[1].jam = False
        await _until(lambda: not app.alarms.alarms["plc-a/conveyor.jam"].active, what="the jam to clear")
        assert not app.alarms.alarms["plc-a/conveyor.jam"].acked  # returned to normal, unacknowledged
    finally:
        await sim.stop()


async def test_ur_protective_stop_is_an_alarm_and_held(start_bridge, ur_sim):
    app = await start_bridge(
        [{"id": "ur-a", "driver": "ur", "endpoint": ur_sim.endpoint}],
        analytics={"publish_interval_seconds": 0.1},
    )
    await wait_for_state(app, "ur-a", DeviceState.ONLINE)
    ur_sim.protective_stop()
    await _until(lambda: "ur-a/protective_stop" in app.alarms.alarms, what="the protective stop alarm")
    assert app.alarms.alarms["ur-a/protective_stop"].active
    await _until(lambda: app.analytics.devices["ur-a"].clock.state is MachineState.HELD, what="HELD")
