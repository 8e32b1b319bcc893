"""Driver defaults against the real simulators: Modbus `alarm:` map entries and states, UR protective stop."""

from __future__ import annotations

import asyncio

import grpc
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


async def test_opcua_conditions_refresh_acknowledge_forwarded(start_bridge, client_for):
    from linebridge.api import pb
    from linebridge.drivers.opcua.simulator import RobotSimulator

    sim = RobotSimulator("ac-robot")
    await sim.start()
    try:
        await sim.trigger_protective_stop()  # active before the bridge connects: only ConditionRefresh tells
        app = await start_bridge([{"id": "rob-a", "driver": "opcua", "endpoint": sim.endpoint}])
        await wait_for_state(app, "rob-a", DeviceState.ONLINE)
        await _until(lambda: "rob-a/protective_stop" in app.alarms.alarms, what="the refreshed condition")
        alarm = app.alarms.alarms["rob-a/protective_stop"]
        assert alarm.active and not alarm.acked and alarm.source == "device" and alarm.severity == 800
        client = client_for(app)
        request = pb.alarm.AcknowledgeRequest(alarm_id="rob-a/protective_stop", comment="cell checked")
        answer = await client.alarms.Acknowledge(request)
        assert answer.alarm.acked
        assert sim.conditions.acknowledged == [("ProtectiveStop", "cell checked (local)")]
        assert sim.conditions.conditions["ProtectiveStop"].acked
        # Part 9 §5.7.4: after the acknowledgement the server waits for a Confirm, forwarded the same way
        await _until(
            lambda: not app.alarms.alarms["rob-a/protective_stop"].confirmed, what="ConfirmedState false"
        )
        confirmed = await client.alarms.Confirm(
            pb.alarm.ConfirmRequest(alarm_id="rob-a/protective_stop", comment="fixed")
        )
        assert confirmed.alarm.confirmed and sim.conditions.confirmed == [("ProtectiveStop", "fixed (local)")]
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await client.alarms.Confirm(pb.alarm.ConfirmRequest(alarm_id="rob-a/protective_stop"))
        assert again.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        # the condition became ordinary signals of the robot too (for Subscribe, Read and the uplink)
        await _until(
            lambda: "alarms/protective_stop/acked" in app.registry.get("rob-a").signals, what="signals"
        )
        alias = app.registry.get("rob-a").signals["alarms/protective_stop/acked"].alias
        await _until(lambda: (app.bus.value_of(alias) or (None,))[0] is True, what="acked published")
    finally:
        await sim.stop()


def _first_drift_alarm(seed: int, drift: bool, seconds: float):
    """Run the robot model at 100 Hz, feed the shipped drift rules (10 Hz readings); first alarm (axis, t)."""
    import numpy as np

    from linebridge.analytics.config import DeviceAnalytics
    from linebridge.analytics.device import build_detector
    from linebridge.drivers.base import analytics_file
    from linebridge.drivers.opcua.driver import ANALYTICS_FILE
    from linebridge.drivers.opcua.robot_model import RobotFaults, RobotModel

    rules = [
        r for r in DeviceAnalytics.model_validate(analytics_file(ANALYTICS_FILE)).rules if r.type == "cusum"
    ]
    detectors = {int(r.signal.split("/")[1]): build_detector(r) for r in rules}
    model = RobotModel(RobotFaults(seed=seed, motor_drift=drift))
    for step in range(int(seconds * 100)):
        model.step(0.01, 100.0)
        if step % 10:
            continue
        t = np.array([step * 10_000_000], dtype=np.int64)
        for axis, detector in detectors.items():
            detector.update(np.array([model.temperatures[axis - 1]]), t)
            if detector.active:
                return axis, step / 100, model
    return None, None, model


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_motor_drift_is_caught_minutes_before_the_hi_limit(seed):
    axis, at, model = _first_drift_alarm(seed, drift=True, seconds=120)
    assert axis == 3 and 20 < at < 60  # the fault starts at 20 s: the warning comes in the first minute
    assert not model.over_temperature  # the controller's limit is still ~15 minutes away


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_drift_warning_from_a_healthy_robot(seed):
    assert _first_drift_alarm(seed, drift=False, seconds=600)[0] is None


def test_intermittent_fault_schedule_is_reproducible_from_the_seed():
    import itertools

    first = list(itertools.islice(FaultPlan(["intermittent"], seed=7).outages(), 5))
    again = list(itertools.islice(FaultPlan(["intermittent"], seed=7).outages(), 5))
    other = list(itertools.islice(FaultPlan(["intermittent"], seed=8).outages(), 5))
    assert first == again != other
    assert all(10 <= up <= 20 and 2 <= down <= 5 for up, down in first)
