"""Helpers for the command-gate tests: callers with bearer tokens, audit records, a motion test device."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from pydantic import Field

from linebridge.api import pb
from linebridge.app import BridgeApp
from linebridge.audit.chain import read_records
from linebridge.drivers.base import (
    Access,
    BatchSink,
    CommandKind,
    CommandRequest,
    CommandResult,
    DeviceDescription,
    DeviceKind,
    Driver,
    DriverOptions,
    MethodArg,
    MethodSpec,
    ProgressFn,
    SampleBatch,
    Signal,
    StreamHints,
    Value,
    ValueType,
)
from linebridge.security.tokens import hash_token, new_token


def callers(
    tmp_path: Path, roles: dict[str, str]
) -> tuple[dict[str, Any], dict[str, tuple[tuple[str, str], ...]]]:
    """A `security` config section with one bearer token per caller, and each caller's call metadata."""
    tokens = {name: new_token() for name in roles}
    path = tmp_path / "tokens"
    path.write_text("".join(f"{name} {hash_token(token)}\n" for name, token in tokens.items()))
    section = {
        "tokens_file": str(path),
        "identities": {f"token:{name}": role for name, role in roles.items()},
    }
    return section, {name: (("authorization", f"Bearer {token}"),) for name, token in tokens.items()}


async def events_of(
    app: BridgeApp, request: pb.command.ExecuteRequest, metadata: Sequence[tuple[str, str]]
) -> list[pb.command.CommandEvent]:
    """Every event of one Execute through a fresh channel to the bridge."""
    async with grpc.aio.insecure_channel(app.api_address) as channel:
        stub = pb.command_grpc.CommandServiceStub(channel)
        return [event async for event in stub.Execute(request, metadata=metadata)]


async def refusal(
    app: BridgeApp, request: pb.command.ExecuteRequest, metadata: Sequence[tuple[str, str]]
) -> grpc.aio.AioRpcError:
    """The error an Execute ends with (fails the test when it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await events_of(app, request, metadata)
    return info.value


def audit_records(app: BridgeApp, type_: str = "") -> list[dict[str, Any]]:
    """The bridge's audit records so far (of one type when given)."""
    assert app.audit is not None
    return [r for r in read_records(app.audit.directory) if not type_ or r.get("type") == type_]


async def eventually(condition: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    """Wait until `condition()` is true; fail naming `what`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def write(device: str, path: str, value: float) -> pb.command.ExecuteRequest:
    """An Execute that writes one double."""
    return pb.command.ExecuteRequest(
        device_id=device,
        write=pb.command.WriteAction(
            writes=[pb.command.SignalWrite(path=path, value=pb.common.Value(double_value=value))]
        ),
    )


def stop(device: str) -> pb.command.ExecuteRequest:
    return pb.command.ExecuteRequest(device_id=device, stop=pb.command.StopAction())


def move_joints(device: str, positions: Sequence[float], speed: float = 0.0) -> pb.command.ExecuteRequest:
    return pb.command.ExecuteRequest(
        device_id=device, move_joints=pb.command.MoveJointsAction(positions=list(positions), speed=speed)
    )


def move_linear(device: str, x: float, y: float, z: float, speed: float = 0.0) -> pb.command.ExecuteRequest:
    return pb.command.ExecuteRequest(
        device_id=device,
        move_linear=pb.command.MoveLinearAction(
            target=pb.command.Pose(x=x, y=y, z=z, rx=0.0, ry=3.14, rz=0.0), speed=speed
        ),
    )


class ArmOptions(DriverOptions):
    """Shape of the test arm."""

    joints: int = Field(6, ge=1, le=12)
    move_seconds: float = Field(0.0, ge=0)


class ArmDriver(Driver):
    """An in-process robot arm for the gate tests: joint and safety signals the test sets, moves it records.

    Signals: joints/N/actual_position, safety/protective_stop, safety/emergency_stop,
    safety/operational_mode (OPC 40010 numbering: 3 = AUTOMATIC). Commands: move_joints, move_linear,
    run_program, invoke (StartProgram, Echo), write (speed_override), stop.
    """

    type_name = "arm"
    options_model = ArmOptions

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        self.options: ArmOptions = ctx.options  # type: ignore[assignment]
        self.state: dict[str, Value] = {
            f"joints/{j}/actual_position": 0.0 for j in range(1, self.options.joints + 1)
        }
        self.state.update(
            {
                "safety/protective_stop": False,
                "safety/emergency_stop": False,
                "safety/operational_mode": 3,
                "speed_override": 100.0,
            }
        )
        self.executed: list[CommandRequest] = []
        self.stopped = 0

    async def connect(self) -> DeviceDescription:
        types = {bool: ValueType.BOOL, int: ValueType.INT, float: ValueType.DOUBLE}
        signals = [
            Signal(
                path,
                types[type(value)],
                access=Access.READ_WRITE if path == "speed_override" else Access.READ,
            )
            for path, value in self.state.items()
        ]
        methods = [
            MethodSpec("StartProgram", (MethodArg("name", ValueType.STRING),)),
            MethodSpec(
                "Echo", (MethodArg("text", ValueType.STRING),), (MethodArg("text", ValueType.STRING),)
            ),
        ]
        kinds = {
            CommandKind.MOVE_JOINTS,
            CommandKind.MOVE_LINEAR,
            CommandKind.RUN_PROGRAM,
            CommandKind.INVOKE,
            CommandKind.WRITE,
            CommandKind.STOP,
        }
        return DeviceDescription(
            kind=DeviceKind.ROBOT,
            vendor="Linebridge",
            model="Test arm",
            signals=signals,
            methods=methods,
            commands=frozenset(kinds),
        )

    async def close(self) -> None:
        """Nothing to release."""

    async def stream(self, signals: Sequence[Signal], sink: BatchSink, hints: StreamHints) -> None:
        aliases = [s.alias for s in signals]
        while True:  # the whole state every 10 ms, like a controller's cyclic data
            sink.publish(
                SampleBatch(
                    self.device_id,
                    aliases,
                    [self.state[s.path] for s in signals],
                    [time.time_ns()] * len(aliases),
                )
            )
            await asyncio.sleep(0.01)

    async def read(self, signals: Sequence[Signal]) -> SampleBatch:
        return SampleBatch(
            self.device_id,
            [s.alias for s in signals],
            [self.state[s.path] for s in signals],
            [0] * len(signals),
        )

    async def write(self, writes: Sequence[tuple[Signal, Value]]) -> None:
        for signal, value in writes:
            self.state[signal.path] = value

    async def call(self, method: MethodSpec, args: Sequence[Value], progress: ProgressFn) -> list[Value]:
        return list(args) if method.name == "Echo" else []

    async def stop(self) -> None:
        self.stopped += 1

    async def execute(self, request: CommandRequest, progress: ProgressFn) -> CommandResult:
        if request.kind in (CommandKind.MOVE_JOINTS, CommandKind.MOVE_LINEAR, CommandKind.RUN_PROGRAM):
            self.executed.append(request)
            await asyncio.sleep(self.options.move_seconds)
            for joint, target in enumerate(request.joint_positions, start=1):
                self.state[f"joints/{joint}/actual_position"] = target
            return CommandResult(message=f"{request.kind} done")
        if request.kind is CommandKind.INVOKE:
            self.executed.append(request)
        return await super().execute(request, progress)


def arm_device(device_id: str = "arm-1", **options: Any) -> dict[str, Any]:
    """A config entry for an ArmDriver device."""
    return {"id": device_id, "driver": "arm", "endpoint": f"arm://{device_id}", "options": options}
