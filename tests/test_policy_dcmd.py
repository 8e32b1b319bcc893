"""Cloud commands (Sparkplug DCMD over a real broker) pass the same gates as gRPC, and are audited with their topic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from linebridge.app import BridgeApp
from linebridge.commands.types import CommandState
from linebridge.model import Identity, Role
from linebridge.uplink.cloud_commands import cloud_identity
from linebridge.uplink.config import UplinkConfig
from tests.conftest import BridgeFactory, sim_device
from tests.gates_helpers import audit_records, eventually
from tests.mqtt_broker import Broker, Consumer, uplink_section
from tests.sparkplug_decoder import encode_metric, encode_payload

DCMD = "spBv1.0/linebridge/DCMD/test-bridge/sim-1"


async def ready(
    start_bridge: BridgeFactory,
    broker: Broker,
    consumer: Consumer,
    tmp_path: Path,
    uplink: dict[str, Any],
    **sections: Any,
) -> tuple[BridgeApp, dict[str, int]]:
    """A bridge with sim-1 and the uplink; returns it and sim-1's Sparkplug aliases from its DBIRTH."""
    app = await start_bridge(
        [sim_device("sim-1", rate_hz=5, signals=1)],
        uplink=uplink_section(broker, tmp_path / "o.sqlite", **uplink),
        **sections,
    )
    await consumer.wait_for(lambda: consumer.of("DBIRTH", device="sim-1"), what="DBIRTH")
    birth = consumer.of("DBIRTH", device="sim-1")[0].payload
    assert birth is not None
    return app, {m.name: m.alias for m in birth.metrics if m.name and m.alias is not None}


def setpoint(alias: dict[str, int], value: float) -> bytes:
    return encode_payload([encode_metric(alias=alias["setpoint"], datatype="Double", value=value)])


def sim_state(app: BridgeApp) -> dict[str, object]:
    return dict(app.driver_of("sim-1").state)  # type: ignore[attr-defined]


async def test_a_dcmd_acts_as_the_cloud_identity_and_is_audited_with_its_topic(
    broker: Broker, consumer: Consumer, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    app, alias = await ready(
        start_bridge, broker, consumer, tmp_path, {"cloud_writable": {"sim-1": ["setpoint"]}}
    )
    await consumer.publish(DCMD, setpoint(alias, 250.0))
    await eventually(lambda: audit_records(app, "command.finished"), "the command to finish", timeout=20)
    assert sim_state(app)["setpoint"] == 250.0
    accepted, finished = audit_records(app, "command.accepted")[0], audit_records(app, "command.finished")[0]
    assert accepted["who"] == {
        "name": "sparkplug:linebridge",
        "role": "operator",
        "peer": DCMD,
        "via": "sparkplug",
    }
    assert accepted["sparkplug_topic"] == DCMD and accepted["origin"] == f"sparkplug:{DCMD}"
    assert accepted["what"]["arguments"] == {"writes": [{"path": "setpoint", "value": 250.0}]}
    assert finished["what"]["command_id"] == accepted["what"]["command_id"]
    assert finished["outcome"]["state"] == "SUCCEEDED" and accepted["seq"] < finished["seq"]


async def test_a_dcmd_below_the_device_policy_is_denied_without_side_effect(
    broker: Broker, consumer: Consumer, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    app, alias = await ready(
        start_bridge,
        broker,
        consumer,
        tmp_path,
        {"cloud_writable": {"sim-1": ["setpoint"]}},
        policies={"sim-*": {"roles": {"write": "admin"}}},
    )
    await consumer.publish(DCMD, setpoint(alias, 250.0))
    await eventually(lambda: audit_records(app, "command.denied"), "the denial", timeout=20)
    (denied,) = audit_records(app, "command.denied")
    assert denied["who"]["name"] == "sparkplug:linebridge" and denied["sparkplug_topic"] == DCMD
    assert (
        denied["outcome"]["reason"] == "PERMISSION_DENIED" and "[roles.write]" in denied["outcome"]["message"]
    )
    assert sim_state(app)["setpoint"] == 0.0
    (command,) = app.commands.list("sim-1")
    assert (
        command.state is CommandState.REJECTED and "policies['sim-*'] allows admin" in command.error_message
    )


async def test_a_cloud_role_of_viewer_may_not_write(
    broker: Broker, consumer: Consumer, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    app, alias = await ready(
        start_bridge,
        broker,
        consumer,
        tmp_path,
        {"cloud_writable": {"sim-1": ["*"]}, "command_role": "viewer"},
    )
    await consumer.publish(DCMD, setpoint(alias, 3.0))
    await eventually(lambda: audit_records(app, "command.denied"), "the denial", timeout=20)
    assert audit_records(app, "command.denied")[0]["who"]["role"] == "viewer"
    assert sim_state(app)["setpoint"] == 0.0


async def test_dcmds_refused_before_the_command_manager_are_audited_too(
    broker: Broker, consumer: Consumer, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    app, alias = await ready(
        start_bridge, broker, consumer, tmp_path, {"cloud_writable": {"sim-1": ["setpoint"]}}
    )
    await consumer.publish(
        DCMD, encode_payload([encode_metric(alias=alias["enabled"], datatype="Boolean", value=True)])
    )
    await consumer.publish(DCMD, b"\xff\x01garbage")
    await eventually(
        lambda: len(audit_records(app, "command.denied") + audit_records(app, "command.rejected")) == 2,
        "two refusals",
        timeout=20,
    )
    (denied,) = audit_records(app, "command.denied")
    assert "cloud_writable" in denied["outcome"]["message"] and denied["sparkplug_topic"] == DCMD
    (rejected,) = audit_records(app, "command.rejected")
    assert rejected["outcome"]["reason"] == "INVALID_ARGUMENT" and rejected["who"]["via"] == "sparkplug"
    assert sim_state(app)["enabled"] is False


async def test_cloud_commands_have_a_rate_limit_of_their_own(
    broker: Broker, consumer: Consumer, start_bridge: BridgeFactory, tmp_path: Path
) -> None:
    app, alias = await ready(
        start_bridge,
        broker,
        consumer,
        tmp_path,
        {"cloud_writable": {"sim-1": ["setpoint"]}},
        commands={"rate_limits": {"identity": {"rate": 0.01, "burst": 1}}},
    )
    await consumer.publish(DCMD, setpoint(alias, 1.0))
    await consumer.publish(DCMD, setpoint(alias, 2.0))
    await eventually(lambda: len(app.commands.list("sim-1")) == 2, "both commands", timeout=20)
    await eventually(lambda: sim_state(app)["setpoint"] == 1.0, "the first write")
    refused = [c for c in app.commands.list("sim-1") if c.state is CommandState.REJECTED]
    assert [c.error_reason for c in refused] == ["RATE_LIMITED"]
    (limited,) = audit_records(app, "command.rejected")
    assert limited["outcome"]["reason"] == "RATE_LIMITED" and limited["sparkplug_topic"] == DCMD


def test_the_cloud_identity_names_the_primary_host_application():
    config = UplinkConfig(primary_host_id="mes-1", command_role="admin")
    assert cloud_identity(config) == Identity("sparkplug:mes-1", Role.ADMIN, via="sparkplug")
    assert cloud_identity(UplinkConfig()) == Identity("sparkplug:linebridge", Role.OPERATOR, via="sparkplug")
