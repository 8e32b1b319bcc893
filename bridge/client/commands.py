"""Commands: the `Command` handle of an Execute, and the deadman-held `Jog` stream."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from linebridge.api import pb
from linebridge.client import errors
from linebridge.client._channel import Caller
from linebridge.client._values import duration, value_message, value_of

Value = float | int | bool | str


class CommandState(enum.IntEnum):
    """Where a command is in its lifecycle."""

    UNSPECIFIED = 0
    QUEUED = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    REJECTED = 5
    CANCELLED = 6
    TIMED_OUT = 7

    @property
    def final(self) -> bool:
        """Whether the command has ended."""
        return self >= CommandState.SUCCEEDED


@dataclass(frozen=True, slots=True)
class CommandEvent:
    """One state change or progress report of a command."""

    command_id: str
    state: CommandState
    progress: float = 0.0
    progress_message: str = ""
    result: tuple[Value, ...] = ()
    error_reason: str = ""
    error_message: str = ""
    time_ns: int = 0


def event_of(message: pb.command.CommandEvent | pb.command.Command) -> CommandEvent:
    """A CommandEvent from an event or a command message."""
    time = message.time if isinstance(message, pb.command.CommandEvent) else message.updated
    return CommandEvent(
        command_id=message.command_id,
        state=CommandState(message.state)
        if message.state in CommandState._value2member_map_
        else CommandState(0),
        progress=message.progress,
        progress_message=message.progress_message,
        result=tuple(value_of(v) for v in message.result),
        error_reason=message.error.reason,
        error_message=message.error.message,
        time_ns=time.ToNanoseconds(),
    )


def outcome(event: CommandEvent) -> tuple[Value, ...]:
    """The result of a final event, or the typed exception of a command that did not succeed."""
    if event.state is CommandState.SUCCEEDED:
        return event.result
    args = (event.error_message, event.error_reason, event.state.name, event.command_id)
    if event.state is CommandState.REJECTED:
        raise errors.CommandRefused(
            f"{event.command_id} REJECTED: {event.error_reason}: {event.error_message}"
        )
    if event.state is CommandState.TIMED_OUT:
        raise errors.CommandTimedOut(*args)
    if event.state is CommandState.CANCELLED:
        raise errors.CommandCancelled(*args)
    raise errors.CommandFailed(*args)


def build_request(
    device: str,
    *,
    write: Mapping[str, Value] | None = None,
    invoke: str | None = None,
    args: Sequence[Value] = (),
    stop: bool = False,
    move_joints: Sequence[float] | None = None,
    run_program: str | None = None,
    idempotency_key: str = "",
    timeout: float | None = None,
) -> pb.command.ExecuteRequest:
    """The ExecuteRequest for exactly one action."""
    chosen = [write is not None, invoke is not None, stop, move_joints is not None, run_program is not None]
    if sum(chosen) != 1:
        raise errors.InvalidArgument(
            "execute takes exactly one of write=, invoke=, stop=, move_joints=, run_program="
        )
    request = pb.command.ExecuteRequest(device_id=device, idempotency_key=idempotency_key)
    if timeout:
        request.timeout.CopyFrom(duration(timeout))
    if write is not None:
        request.write.writes.extend(
            pb.command.SignalWrite(path=p, value=value_message(v)) for p, v in write.items()
        )
    elif invoke is not None:
        request.invoke.CopyFrom(pb.command.InvokeAction(method=invoke, args=[value_message(a) for a in args]))
    elif stop:
        request.stop.SetInParent()
    elif move_joints is not None:
        request.move_joints.positions.extend(move_joints)
    else:
        request.run_program.program = run_program or ""
    return request


class Command:
    """A command sent with execute(): follow it with events(), wait() for its result, or cancel() it.

    When the stream breaks (bridge restart, network), the handle looks the command up again and
    follows it under the same idempotency key, so it never runs twice; a command the bridge no
    longer knows raises CommandLost."""

    def __init__(self, client: Caller, request: pb.command.ExecuteRequest, call: Any, first: CommandEvent):
        self._client, self._request, self._call = client, request, call
        self.id = first.command_id
        self.device_id = request.device_id
        self.idempotency_key = request.idempotency_key
        self.history: list[CommandEvent] = [first]

    @property
    def state(self) -> CommandState:
        """The latest state seen."""
        return self.history[-1].state

    def __repr__(self) -> str:
        return f"<Command {self.id} on {self.device_id}: {self.state.name}>"

    async def events(self) -> AsyncIterator[CommandEvent]:
        """Every event of the command, from the first, until it ends."""
        seen = 0
        while True:
            while seen < len(self.history):
                seen += 1
                yield self.history[seen - 1]
            if self.state.final:
                return
            await self._next()

    async def wait(self, timeout: float | None = None) -> tuple[Value, ...]:
        """The result values once the command succeeded; CommandFailed/-TimedOut/-Cancelled otherwise."""
        async with asyncio.timeout(timeout):
            while not self.state.final:
                await self._next()
        return outcome(self.history[-1])

    async def cancel(self) -> CommandState:
        """Ask the bridge to cancel the command; returns its state after the request."""
        request = pb.command.CancelRequest(command_id=self.id)
        response = await self._client._unary(self._client.stubs.commands.Cancel, request)
        return event_of(response.command).state

    async def _next(self) -> None:
        try:
            message = await self._call.read()
        except grpc.RpcError as exc:
            error = errors.from_rpc_error(exc)
            if not isinstance(error, errors.BridgeUnavailable | errors.Cancelled):
                raise error from None
            return await self._reattach()
        if message is grpc.aio.EOF:
            return await self._reattach()
        self.history.append(event_of(message))

    async def _reattach(self) -> None:
        """Follow the command again after its stream ended without a final event."""
        try:
            got = await self._client._unary(
                self._client.stubs.commands.GetCommand, pb.command.GetCommandRequest(command_id=self.id)
            )
        except errors.CommandNotFound:
            raise errors.CommandLost(
                f"the bridge no longer knows command {self.id} (did it restart?)"
            ) from None
        event = event_of(got.command)
        if event.state.final or not self.idempotency_key:
            self.history.append(event)
            return
        self._call = self._client.stubs.commands.Execute(self._request)  # same key: the existing command


class Jog:
    """An open Jog stream: targets are sent with move_joints()/move_linear(); a heartbeat task keeps the
    deadman armed while the block runs. Leaving the block ends the stream and the bridge stops the device."""

    def __init__(self, client: Caller, device: str, deadman_interval: float = 0.5) -> None:
        self._client, self.device_id, self.deadman_interval = client, device, deadman_interval
        self._requests: asyncio.Queue[pb.command.JogRequest | None] = asyncio.Queue()
        self._call: Any = None
        self._beat: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Jog:
        start = pb.command.JogStart(
            device_id=self.device_id, deadman_interval=duration(self.deadman_interval)
        )
        await self._requests.put(pb.command.JogRequest(start=start))
        self._call = self._client.stubs.commands.Jog(self._request_stream())
        self._beat = asyncio.create_task(self._heartbeat(), name=f"jog-heartbeat-{self.device_id}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._beat is not None:
            self._beat.cancel()
            await asyncio.gather(self._beat, return_exceptions=True)
        await self._requests.put(None)
        try:
            while await self._call.read() is not grpc.aio.EOF:
                pass
        except grpc.RpcError:
            pass  # the stream is over either way; the bridge stops the device when it ends

    async def _request_stream(self) -> AsyncIterator[pb.command.JogRequest]:
        while (request := await self._requests.get()) is not None:
            yield request

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.deadman_interval / 3)
            await self._requests.put(pb.command.JogRequest(heartbeat=pb.command.JogHeartbeat()))

    async def move_joints(
        self, positions: Sequence[float], speed: float = 0.0, acceleration: float = 0.0
    ) -> CommandEvent:
        """Send a joint-space target; returns its command as accepted (or raises the gate's refusal)."""
        action = pb.command.MoveJointsAction(
            positions=list(positions), speed=speed, acceleration=acceleration
        )
        return await self._target(pb.command.JogRequest(move_joints=action))

    async def move_linear(
        self, pose: Sequence[float], speed: float = 0.0, acceleration: float = 0.0
    ) -> CommandEvent:
        """Send a Cartesian target (x, y, z in m, rx, ry, rz rotation vector in rad)."""
        x, y, z, rx, ry, rz = pose
        target = pb.command.Pose(x=x, y=y, z=z, rx=rx, ry=ry, rz=rz)
        action = pb.command.MoveLinearAction(target=target, speed=speed, acceleration=acceleration)
        return await self._target(pb.command.JogRequest(move_linear=action))

    async def _target(self, request: pb.command.JogRequest) -> CommandEvent:
        await self._requests.put(request)
        try:
            response = await self._call.read()
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from None
        if response is grpc.aio.EOF:
            raise errors.BridgeUnavailable("the Jog stream ended")
        return event_of(response.event)
