"""Regressions from the fault probe (issue #12): command timeouts, idempotency, cancel, Stop and the audit."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from linebridge.api import pb
from linebridge.errors import ConfigError
from linebridge.model import DeviceState, Identity, Role
from tests.conftest import BridgeFactory, make_config, sim_device, wait_for_state
from tests.gates_helpers import (
    events_of,
    eventually,
    stop,
)

Code = grpc.StatusCode
SUCCEEDED = pb.command.COMMAND_STATE_SUCCEEDED
NO_METADATA: tuple[tuple[str, str], ...] = ()
ALICE = Identity("alice", Role.OPERATOR, "ipv4:127.0.0.1:4242", "grpc")


def test_a_default_timeout_above_the_maximum_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        make_config(commands={"default_timeout_seconds": 900, "max_timeout_seconds": 600})
    assert "commands: default_timeout_seconds (900)" in str(info.value)
    assert "max_timeout_seconds (600)" in str(info.value)


async def test_stop_is_never_refused_by_a_timeout_setting(start_bridge: BridgeFactory):
    app = await start_bridge(
        [sim_device("sim-1", signals=1, rate_hz=20)],
        commands={"default_timeout_seconds": 1, "max_timeout_seconds": 5},
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    sim = app.driver_of("sim-1")
    request = stop("sim-1")
    request.timeout.CopyFrom(Duration(seconds=900))  # over the maximum: a Stop still runs
    assert (await events_of(app, request, NO_METADATA))[-1].state == SUCCEEDED
    assert sim.stopped == 1  # type: ignore[attr-defined]
    # A manager whose default is over its maximum (built outside the config check): the deadman still stops.
    app.commands.default_timeout = 900
    deadman = app.commands.deadman("sim-1", ALICE, interval=0.05)
    await eventually(lambda: sim.stopped == 2, "the deadman's stop")  # type: ignore[attr-defined]
    assert not deadman.armed
