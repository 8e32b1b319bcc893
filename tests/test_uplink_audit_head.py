"""The audit chain head as a Sparkplug node metric (issue #12 risk 5): in NBIRTH, then as NDATA whenever it
moves, so a host application keeps an outside witness of the audit log (a cut tail shows against it)."""

from __future__ import annotations

from linebridge.api import pb
from linebridge.model import DeviceState
from tests.conftest import sim_device, wait_for_state
from tests.gates_helpers import events_of, write
from tests.mqtt_broker import uplink_section

NODE = "test-bridge"


async def test_the_audit_head_is_born_and_follows_every_audited_command(
    start_bridge, broker, consumer, tmp_path
):
    uplink = uplink_section(broker, tmp_path / "outbox.sqlite", audit_head_interval_seconds=0.1)
    app = await start_bridge([sim_device("sim-1", signals=1, rate_hz=10)], uplink=uplink)
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    await consumer.wait_for(lambda: consumer.of("NBIRTH", NODE), what="NBIRTH")
    (birth,) = consumer.of("NBIRTH", NODE)
    assert "Audit/Head" in {m.name for m in birth.payload.metrics}

    for value in (1.0, 2.0):
        events = await events_of(app, write("sim-1", "setpoint", value), ())
        assert events[-1].state == pb.command.COMMAND_STATE_SUCCEEDED
        expected = app._audit_head_text()

        def published(want: str = expected) -> bool:
            return any(s.name == "Audit/Head" and s.value == want for s in consumer.samples if s.device == "")

        await consumer.wait_for(published, what=f"NDATA Audit/Head = {expected}")
        seq = int(expected.split(":")[1])
        assert seq >= 2, "the head counts the command's records"
    heads = [s.value for s in consumer.samples if s.name == "Audit/Head"]
    assert len(heads) == len(set(heads)), "published only when it moved"
    assert consumer.errors == []
