"""Cloud commands over a real broker: DCMD -> write commands, the cloud_writable policy, malformed input."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from linebridge.api import pb
from linebridge.app import BridgeApp
from linebridge.client.raw import RawClient
from linebridge.commands.types import CommandState
from tests.conftest import BridgeFactory, sim_device
from tests.mqtt_broker import Broker, Consumer, uplink_section
from tests.sparkplug_decoder import encode_metric, encode_payload

DCMD = "spBv1.0/linebridge/DCMD/test-bridge/sim-1"
NCMD = "spBv1.0/linebridge/NCMD/test-bridge"


async def ready(
    start_bridge: BridgeFactory,
    broker: Broker,
    consumer: Consumer,
    tmp_path: Path,
    **uplink: object,
) -> tuple[BridgeApp, dict[str, int]]:
    """A bridge with sim-1 and the uplink; returns it and sim-1's Sparkplug aliases from its DBIRTH."""
    app = await start_bridge(
        [sim_device("sim-1", rate_hz=5, signals=1)],
        uplink=uplink_section(broker, tmp_path / "o.sqlite", **uplink),
    )
    await consumer.wait_for(lambda: consumer.of("DBIRTH", device="sim-1"), what="DBIRTH")
    birth = consumer.of("DBIRTH", device="sim-1")[0].payload
    assert birth is not None
    return app, {m.name: m.alias for m in birth.metrics if m.name and m.alias is not None}


async def listed(client: RawClient, device_id: str) -> list[pb.command.Command]:
    response = await client.commands.ListCommands(pb.command.ListCommandsRequest(device_id=device_id))
    return list(response.commands)


def sim_state(app: BridgeApp) -> dict[str, object]:
    driver = app.driver_of("sim-1")
    assert driver is not None
    return dict(driver.state)  # type: ignore[attr-defined]


async def wait_rejected(listener: Consumer, app: BridgeApp, count: int) -> None:
    assert app.uplink is not None
    uplink = app.uplink
    await listener.wait_for(lambda: uplink.status().commands_rejected >= count, what=f"{count} rejections")


async def test_an_allowed_dcmd_becomes_a_write_command(
    broker: Broker,
    consumer: Consumer,
    start_bridge: BridgeFactory,
    client_for: Callable[[BridgeApp], RawClient],
    tmp_path: Path,
) -> None:
    app, alias = await ready(
        start_bridge, broker, consumer, tmp_path, cloud_writable={"sim-*": ["setpoint", "label"]}
    )
    await consumer.publish(
        DCMD,
        encode_payload(
            [
                encode_metric(alias=alias["setpoint"], datatype="Double", value=250.0),
                encode_metric(name="label", datatype="String", value="from cloud"),
            ]
        ),
    )
    await consumer.wait_for(lambda: sim_state(app)["setpoint"] == 250.0, what="the write on the device")
    assert sim_state(app)["label"] == "from cloud"
    (command,) = await listed(client_for(app), "sim-1")
    assert command.kind == "write"
    await consumer.wait_for(lambda: app.commands.get(command.command_id).state is CommandState.SUCCEEDED)
    assert app.commands.get(command.command_id).spec.origin == f"sparkplug:{DCMD}"


async def test_a_denied_dcmd_has_no_side_effect_and_is_rejected_in_the_history(
    broker: Broker,
    consumer: Consumer,
    start_bridge: BridgeFactory,
    client_for: Callable[[BridgeApp], RawClient],
    tmp_path: Path,
) -> None:
    app, alias = await ready(start_bridge, broker, consumer, tmp_path, cloud_writable={"sim-1": ["setpoint"]})
    before = sim_state(app)
    await consumer.publish(
        DCMD, encode_payload([encode_metric(alias=alias["enabled"], datatype="Boolean", value=True)])
    )
    await wait_rejected(consumer, app, 1)
    assert sim_state(app) == before
    (command,) = await listed(client_for(app), "sim-1")
    assert command.state == pb.command.COMMAND_STATE_REJECTED and command.error.reason == "PERMISSION_DENIED"
    assert "cloud_writable" in command.error.message


async def test_malformed_dcmds_are_rejected_without_side_effects(
    broker: Broker,
    consumer: Consumer,
    start_bridge: BridgeFactory,
    client_for: Callable[[BridgeApp], RawClient],
    tmp_path: Path,
) -> None:
    app, alias = await ready(start_bridge, broker, consumer, tmp_path, cloud_writable={"sim-1": ["*"]})
    before = sim_state(app)
    rng = random.Random(5)
    bad = [rng.randbytes(n) for n in (1, 7, 64, 300)] + [
        b"",  # no metrics at all
        encode_payload([encode_metric(alias=99_999, datatype="Double", value=1.0)]),  # unknown alias
        encode_payload(
            [encode_metric(alias=alias["setpoint"], datatype="String", value="fast")]
        ),  # wrong datatype
        encode_payload(
            [encode_metric(alias=alias["setpoint"], value=7, value_datatype="Int64")]
        ),  # wrong value field
        encode_payload([encode_metric(alias=alias["enabled"], datatype="Boolean")]),  # no value
        encode_payload(
            [
                encode_metric(alias=alias["setpoint"], datatype="Double", value=1.0),
                encode_metric(alias=alias["label"], datatype="Int64", value=3),
            ]
        ),  # one bad metric spoils all
    ]
    for payload in bad:
        await consumer.publish(DCMD, payload)
    await wait_rejected(consumer, app, len(bad))
    assert sim_state(app) == before
    commands = await listed(client_for(app), "sim-1")
    assert len(commands) == len(bad)
    assert {c.state for c in commands} == {pb.command.COMMAND_STATE_REJECTED}
    assert {c.error.reason for c in commands} == {"INVALID_ARGUMENT"}

    # The bridge is unharmed: a good command still works, a command for a stranger is NOT_FOUND.
    await consumer.publish(
        DCMD, encode_payload([encode_metric(alias=alias["setpoint"], datatype="Double", value=-5.0)])
    )
    await consumer.wait_for(
        lambda: sim_state(app)["setpoint"] == -5.0, what="a good write after the bad ones"
    )
    await consumer.publish(
        DCMD.replace("sim-1", "ghost"), encode_payload([encode_metric(alias=1, datatype="Double", value=1.0)])
    )
    await wait_rejected(consumer, app, len(bad) + 1)
    (ghost,) = await listed(client_for(app), "ghost")
    assert ghost.error.reason == "NOT_FOUND"
    assert app.uplink is not None and app.uplink.status().connects == 1  # no connection was closed for them
    assert consumer.errors == []


async def test_ncmd_other_than_rebirth_is_rejected(
    broker: Broker,
    consumer: Consumer,
    start_bridge: BridgeFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="linebridge.uplink.cloud_commands")
    app, _ = await ready(start_bridge, broker, consumer, tmp_path)
    await consumer.publish(
        NCMD, encode_payload([encode_metric(name="Node Control/Reboot", datatype="Boolean", value=True)])
    )
    await consumer.publish(NCMD, b"\xff\xff\xff")
    await consumer.publish(
        NCMD, encode_payload([encode_metric(name="Node Control/Rebirth", datatype="String", value="yes")])
    )
    await wait_rejected(consumer, app, 3)
    assert len(consumer.of("NBIRTH")) == 1
    assert any(
        "rejected NCMD" in r.getMessage() and "not a Sparkplug B payload" in r.getMessage()
        for r in caplog.records
    )
    assert app.uplink is not None and app.uplink.status().connects == 1
