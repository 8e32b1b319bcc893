"""When the audit log cannot take a record, commands are refused (never run unaudited), through gRPC."""

from __future__ import annotations

import asyncio
import os
import threading

import grpc

from linebridge.api import pb
from linebridge.audit import log as log_module
from linebridge.audit.chain import verify
from linebridge.model import DeviceState
from tests.conftest import BridgeFactory, sim_device, wait_for_state
from tests.gates_helpers import audit_records, events_of, refusal, stop, write

Code = grpc.StatusCode
SUCCEEDED = pb.command.COMMAND_STATE_SUCCEEDED
NO_METADATA: tuple[tuple[str, str], ...] = ()


async def online(start_bridge: BridgeFactory, **audit: object):
    app = await start_bridge([sim_device("sim-1", signals=1, rate_hz=20)], audit=audit)
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    return app


async def test_a_full_audit_budget_refuses_commands_but_not_stop(start_bridge: BridgeFactory):
    app = await online(start_bridge, max_total_bytes=16384, reserve_bytes=4096, stop_reserve_bytes=1024)
    sim = app.driver_of("sim-1")
    accepted = 0
    for n in range(1, 100):
        try:
            events = await events_of(app, write("sim-1", "setpoint", float(n)), NO_METADATA)
        except grpc.aio.AioRpcError as exc:
            error = exc
            break
        assert events[-1].state == SUCCEEDED
        accepted = n
    else:
        raise AssertionError("the audit budget never ran out")
    assert accepted > 3 and error.code() is Code.RESOURCE_EXHAUSTED
    assert "audit log full" in error.details() and "audit.max_total_bytes" in error.details()
    assert sim.state["setpoint"] == float(accepted)  # type: ignore[attr-defined]  # the refused write never ran
    assert app.commands.list("sim-1")[0].error_reason == "AUDIT_UNAVAILABLE"
    # A stop still goes through (and is audited) in the reserve kept for it.
    assert (await events_of(app, stop("sim-1"), NO_METADATA))[-1].state == SUCCEEDED
    assert sim.stopped == 1  # type: ignore[attr-defined]
    assert app.audit is not None and app.audit.usage <= 16384
    verdict = verify(app.audit.directory)
    assert verdict.ok and verdict.last_hash == app.audit.last_hash


async def test_a_disk_error_refuses_commands_until_the_log_can_be_written(start_bridge: BridgeFactory):
    app = await online(start_bridge)
    audit = app.audit
    assert audit is not None and audit._fd is not None
    real, full = audit._fd, os.open("/dev/full", os.O_WRONLY)  # every write: ENOSPC, as on a full disk
    audit._fd = full
    try:
        error = await refusal(app, write("sim-1", "setpoint", 5.0), NO_METADATA)
        stop_error = await refusal(app, stop("sim-1"), NO_METADATA)
    finally:
        audit._fd = real
        os.close(full)
    assert error.code() is Code.RESOURCE_EXHAUSTED and "No space left on device" in error.details()
    assert stop_error.code() is Code.RESOURCE_EXHAUSTED  # not even a stop runs unaudited
    sim = app.driver_of("sim-1")
    assert sim.state["setpoint"] == 0.0 and sim.stopped == 0  # type: ignore[attr-defined]
    assert (await events_of(app, write("sim-1", "setpoint", 6.0), NO_METADATA))[-1].state == SUCCEEDED
    assert verify(audit.directory).ok


async def test_a_stop_flood_neither_fills_the_budget_nor_is_blocked_by_a_full_one(
    start_bridge: BridgeFactory,
):
    """Issue 12, risk 1: 150 Stops in 0.3 s filled a 64 KB budget, and then every command was refused."""
    app = await online(start_bridge, max_total_bytes=32768, reserve_bytes=4096, stop_reserve_bytes=4096)
    sim = app.driver_of("sim-1")
    async with grpc.aio.insecure_channel(app.api_address) as channel:
        stub = pb.command_grpc.CommandServiceStub(channel)
        for _ in range(150):
            assert [e async for e in stub.Execute(stop("sim-1"))][-1].state == SUCCEEDED
    assert sim.stopped == 150  # type: ignore[attr-defined]  # every Stop ran
    # The flood took a few records: commands are still accepted.
    assert (await events_of(app, write("sim-1", "setpoint", 1.0), NO_METADATA))[-1].state == SUCCEEDED
    await app.commands.close()  # closes the open window: its count is written
    coalesced = audit_records(app, "command.stops_coalesced")
    accepted = [r for r in audit_records(app, "command.accepted") if r["what"]["action"] == "stop"]
    assert coalesced and len(accepted) + sum(r["what"]["count"] for r in coalesced) == 150
    assert all(r["who"]["name"] == "local" or r["who"]["via"] == "grpc" for r in coalesced)


async def test_a_full_budget_never_blocks_a_stop(start_bridge: BridgeFactory):
    app = await online(start_bridge, max_total_bytes=16384, reserve_bytes=4096, stop_reserve_bytes=2048)
    assert app.audit is not None
    app.audit.usage = app.audit.config.max_total_bytes  # full to the last byte, the Stop reserve too
    error = await refusal(app, write("sim-1", "setpoint", 2.0), NO_METADATA)
    assert error.code() is Code.RESOURCE_EXHAUSTED and "audit log full" in error.details()
    assert (await events_of(app, stop("sim-1"), NO_METADATA))[-1].state == SUCCEEDED
    assert app.driver_of("sim-1").stopped == 1  # type: ignore[attr-defined]


async def test_a_command_whose_record_is_not_on_disk_by_its_deadline_times_out_without_running(
    start_bridge: BridgeFactory, monkeypatch
):
    """A command waits for its "accepted" record's fsync, but only until its own deadline: a disk that does
    not answer makes it TIMED_OUT (never run), not RUNNING for as long as the disk takes."""
    app = await online(start_bridge)
    release = threading.Event()
    real = log_module._sync_files

    def hung_disk(*args: object) -> None:
        release.wait(30)
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(log_module, "_sync_files", hung_disk)
    request = write("sim-1", "setpoint", 7.0)
    request.timeout.FromMilliseconds(300)
    try:
        events = await asyncio.wait_for(events_of(app, request, NO_METADATA), 20)
    finally:
        release.set()
    assert events[-1].state == pb.command.COMMAND_STATE_TIMED_OUT, events[-1]
    assert app.driver_of("sim-1").state["setpoint"] == 0.0  # type: ignore[attr-defined]  # it never ran
