"""Analytics through a real bridge and gRPC on loopback: derived signals, alarms, acknowledgement, OEE.

The sim device's values/0 cycles through sin(0 .. 0.63) every 64 batches, so it crosses 0.5 often;
the off-delay keeps the alarm active once raised, so acknowledging it twice is deterministic.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from linebridge.api import pb
from linebridge.model import DeviceState
from tests.conftest import sim_device, wait_for_state

ANALYTICS = {
    "publish_interval_seconds": 0.1,
    "devices": {
        "ana-*": {
            "states": [{"state": "EXECUTE", "when": [{"signal": "values/1", "gt": 0}]}],
            "default_state": "IDLE",
            "rules": [
                {
                    "name": "wave_hi",
                    "type": "limit",
                    "kind": "hi",
                    "signal": "values/0",
                    "limit": 0.5,
                    "deadband": 0.05,
                    "off_delay": 60,
                    "severity": 700,
                    "message": "wave high",
                },
            ],
        }
    },
}


async def _bridge(start_bridge):
    app = await start_bridge([sim_device("ana-1", signals=2, rate_hz=200)], analytics=ANALYTICS)
    await wait_for_state(app, "ana-1", DeviceState.ONLINE)
    return app


async def _next_event(stream, change: int, timeout: float = 10.0) -> pb.alarm.AlarmEvent:
    async def find():
        async for update in stream:
            if update.HasField("event") and update.event.change == change:
                return update.event
        raise AssertionError("stream ended")

    return await asyncio.wait_for(find(), timeout)


async def test_alarm_raised_watched_acknowledged_and_audited(start_bridge, client_for):
    app = await _bridge(start_bridge)
    client = client_for(app)
    stream = client.alarms.WatchAlarms(pb.alarm.WatchAlarmsRequest(device_glob="ana-*"))
    first = await anext(aiter(stream))
    assert first.HasField("snapshot")
    event = await _next_event(stream, pb.alarm.ALARM_CHANGE_RAISED)
    assert event.alarm.id == "ana-1/wave_hi" and event.alarm.severity == 700
    assert event.alarm.active and not event.alarm.acked and "wave high" in event.alarm.message
    listed = await client.alarms.ListAlarms(pb.alarm.ListAlarmsRequest())
    assert "ana-1/wave_hi" in {a.id for a in listed.alarms}
    acked = await client.alarms.Acknowledge(
        pb.alarm.AcknowledgeRequest(alarm_id="ana-1/wave_hi", comment="seen")
    )
    assert acked.alarm.acked and acked.alarm.ack_comment == "seen" and acked.alarm.acked_by
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await client.alarms.Acknowledge(pb.alarm.AcknowledgeRequest(alarm_id="ana-1/wave_hi"))
    assert again.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await client.alarms.Acknowledge(pb.alarm.AcknowledgeRequest(alarm_id="ana-1/nope"))
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as no_confirm:  # a rule alarm needs no confirmation
        await client.alarms.Confirm(pb.alarm.ConfirmRequest(alarm_id="ana-1/wave_hi"))
    assert no_confirm.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    stream.cancel()
    history = await client.alarms.AlarmHistory(pb.alarm.AlarmHistoryRequest(device_glob="ana-1"))
    changes = [e.change for e in history.events]
    assert pb.alarm.ALARM_CHANGE_RAISED in changes and pb.alarm.ALARM_CHANGE_ACKNOWLEDGED in changes
    audit_text = app.audit.path.read_text()
    assert '"alarm.acknowledge"' in audit_text and '"seen"' in audit_text


async def test_shelve_needs_a_reason_and_unshelve_needs_a_shelved_alarm(start_bridge, client_for):
    app = await _bridge(start_bridge)
    client = client_for(app)
    stream = client.alarms.WatchAlarms(pb.alarm.WatchAlarmsRequest())
    await _next_event(stream, pb.alarm.ALARM_CHANGE_RAISED)
    stream.cancel()
    with pytest.raises(grpc.aio.AioRpcError) as no_reason:
        await client.alarms.Shelve(
            pb.alarm.ShelveRequest(alarm_id="ana-1/wave_hi", duration=Duration(seconds=60))
        )
    assert no_reason.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    shelved = await client.alarms.Shelve(
        pb.alarm.ShelveRequest(alarm_id="ana-1/wave_hi", duration=Duration(seconds=60), reason="sensor swap")
    )
    assert shelved.alarm.shelved and shelved.alarm.shelve_reason == "sensor swap"
    back = await client.alarms.Unshelve(pb.alarm.UnshelveRequest(alarm_id="ana-1/wave_hi"))
    assert not back.alarm.shelved
    with pytest.raises(grpc.aio.AioRpcError) as not_shelved:
        await client.alarms.Unshelve(pb.alarm.UnshelveRequest(alarm_id="ana-1/wave_hi"))
    assert not_shelved.value.code() is grpc.StatusCode.FAILED_PRECONDITION


async def test_state_and_oee_are_ordinary_signals_and_get_efficiency_answers(start_bridge, client_for):
    app = await _bridge(start_bridge)
    client = client_for(app)
    paths = {
        s.path
        for s in (await client.devices.GetDevice(pb.device.GetDeviceRequest(id="ana-1"))).device.signals
    }
    assert {
        "state/current",
        "state/seconds/EXECUTE",
        "alarms/wave_hi/active",
        "alarms/wave_hi/acked",
    } <= paths

    async def state_seen():
        async for sample in client.samples(["ana-1/state/current"]):
            if not isinstance(sample, str) and sample.value in ("EXECUTE", "IDLE"):
                return sample.value

    assert await asyncio.wait_for(state_seen(), 10) in ("EXECUTE", "IDLE")
    answer = await client.efficiency.GetEfficiency(
        pb.alarm.GetEfficiencyRequest(device_glob="ana-*", window="start")
    )
    (eff,) = answer.devices
    assert eff.device_id == "ana-1" and eff.pbt > 0
    assert set(eff.seconds_by_state) <= {"EXECUTE", "IDLE", "OFFLINE"}
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await client.efficiency.GetEfficiency(pb.alarm.GetEfficiencyRequest(window="fortnight"))
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_viewers_read_alarms_but_only_operators_acknowledge(start_bridge, tmp_path):
    from linebridge.client.raw import RawClient as Client
    from tests.security_helpers import write_tokens

    tokens = write_tokens(tmp_path / "tokens", ["viewer", "op"])
    app = await start_bridge(
        [sim_device("ana-1", signals=2, rate_hz=200)],
        analytics=ANALYTICS,
        security={
            "tokens_file": str(tmp_path / "tokens"),
            "identities": {"token:viewer": "viewer", "token:op": "operator"},
        },
    )
    await wait_for_state(app, "ana-1", DeviceState.ONLINE)
    viewer, op = Client(app.api_address, token=tokens["viewer"]), Client(app.api_address, token=tokens["op"])
    try:
        stream = viewer.alarms.WatchAlarms(pb.alarm.WatchAlarmsRequest())
        await _next_event(stream, pb.alarm.ALARM_CHANGE_RAISED)
        stream.cancel()
        request = pb.alarm.AcknowledgeRequest(alarm_id="ana-1/wave_hi", comment="mine")
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await viewer.alarms.Acknowledge(request)
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
        acked = await op.alarms.Acknowledge(request)
        assert acked.alarm.acked_by == "token:op"
    finally:
        await viewer.close()
        await op.close()


async def test_cli_lists_acknowledges_and_shows_oee(start_bridge, client_for, capsys):
    from linebridge.cli.main import _parser
    from linebridge.cli.remote import run_client

    app = await _bridge(start_bridge)
    client = client_for(app)
    stream = client.alarms.WatchAlarms(pb.alarm.WatchAlarmsRequest())
    await _next_event(stream, pb.alarm.ALARM_CHANGE_RAISED)
    stream.cancel()
    target = ["--target", app.api_address]
    assert await run_client(_parser().parse_args(["alarms", *target])) == 0
    listed = capsys.readouterr().out
    assert "ana-1/wave_hi" in listed and "ACTIVE" in listed and "700" in listed
    assert (
        await run_client(_parser().parse_args(["ack", "ana-1/wave_hi", "--comment", "on it", *target])) == 0
    )
    assert "acknowledged ana-1/wave_hi" in capsys.readouterr().out
    assert await run_client(_parser().parse_args(["ack", "ana-1/wave_hi", *target])) == 1
    assert "FAILED_PRECONDITION" in capsys.readouterr().err
    assert await run_client(_parser().parse_args(["oee", "ana-*", "--window", "start", *target])) == 0
    assert "ana-1" in capsys.readouterr().out


async def test_uplink_carries_state_oee_and_alarm_metrics(broker, consumer, start_bridge, tmp_path):
    from tests.mqtt_broker import uplink_section

    await start_bridge(
        [sim_device("ana-1", signals=2, rate_hz=200)],
        analytics=ANALYTICS,
        uplink=uplink_section(broker, tmp_path / "o.sqlite"),
    )
    await consumer.wait_for(lambda: consumer.of("DBIRTH", device="ana-1"), what="DBIRTH")
    names = {m.name for m in consumer.of("DBIRTH", device="ana-1")[-1].payload.metrics}  # type: ignore[union-attr]
    assert {
        "state/current",
        "state/seconds/EXECUTE",
        "alarms/wave_hi/active",
        "alarms/wave_hi/acked",
    } <= names
    await consumer.wait_for(
        lambda: any(s.name == "alarms/wave_hi/active" and s.value is True for s in consumer.samples),
        what="the alarm as a Sparkplug metric",
    )
    assert consumer.errors == []


async def test_offline_device_is_offline_and_its_stale_rule_fires(start_bridge):
    from linebridge.analytics import MachineState
    from linebridge.drivers.sim.driver import LINKS_DOWN

    section = {
        "publish_interval_seconds": 0.05,
        "devices": {
            "gone-*": {"rules": [{"name": "silent", "type": "stale", "seconds": 0.5, "severity": 300}]}
        },
    }
    app = await start_bridge([sim_device("gone-1", signals=1, rate_hz=50)], analytics=section)
    await wait_for_state(app, "gone-1", DeviceState.ONLINE)
    rt = app.analytics.devices["gone-1"]
    LINKS_DOWN.add("gone-1")
    try:
        await wait_for_state(app, "gone-1", DeviceState.OFFLINE, DeviceState.CONNECTING)
        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        while not (rt.clock.state is MachineState.OFFLINE and "gone-1/silent" in app.alarms.alarms):
            assert loop.time() < end, f"state {rt.clock.state.name}, alarms {list(app.alarms.alarms)}"
            await asyncio.sleep(0.02)
        assert app.alarms.alarms["gone-1/silent"].active
    finally:
        LINKS_DOWN.discard("gone-1")


def test_shortage_by_suspended_share_of_the_window():
    from linebridge.analytics.config import DeviceAnalytics
    from linebridge.analytics.device import DeviceAnalyticsRuntime
    from linebridge.analytics.states import MachineState
    from linebridge.model import Signal, ValueType

    config = DeviceAnalytics.model_validate(
        {
            "states": [{"state": "SUSPENDED", "when": [{"signal": "starved", "eq": True}]}],
            "default_state": "EXECUTE",
            "rules": [{"name": "short", "type": "shortage", "suspended_share": 0.5, "window_seconds": 60}],
        }
    )
    s = 1_000_000_000
    rt = DeviceAnalyticsRuntime("line-1", config, 0)
    rt.bind({"starved": Signal("starved", ValueType.BOOL, alias=7)}, lambda rule: True)
    rt.reachable = True
    rt.inputs["starved"] = False
    rt.evaluate_state(0)
    rt.inputs["starved"] = True
    rt.evaluate_state(20 * s)  # EXECUTE 0-20 s, then SUSPENDED
    rt.tick(45 * s)  # 25 of the last 45 s... of a 60 s window: 25/60 < 0.5
    assert not rt.rules[0].detector.active and rt.clock.state is MachineState.SUSPENDED
    rt.tick(55 * s)  # 35/60 > 0.5
    assert rt.rules[0].detector.active and "SUSPENDED 58%" in rt.rules[0].detector.detail


async def test_planned_busy_time_set_by_an_mes(start_bridge, client_for):
    from google.protobuf.duration_pb2 import Duration

    app = await _bridge(start_bridge)
    client = client_for(app)
    request = pb.alarm.SetPlannedBusyTimeRequest(
        device_glob="ana-*", planned_busy_time=Duration(seconds=7200)
    )
    assert list((await client.efficiency.SetPlannedBusyTime(request)).device_ids) == ["ana-1"]
    (eff,) = (await client.efficiency.GetEfficiency(pb.alarm.GetEfficiencyRequest(window="shift"))).devices
    assert eff.pbt == 7200 and eff.availability == pytest.approx(eff.apt / 7200)
    back = pb.alarm.SetPlannedBusyTimeRequest(device_glob="ana-*", planned_busy_time=Duration(seconds=0))
    await client.efficiency.SetPlannedBusyTime(back)
    (eff,) = (await client.efficiency.GetEfficiency(pb.alarm.GetEfficiencyRequest(window="shift"))).devices
    assert eff.pbt != 7200
