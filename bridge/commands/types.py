"""Command types: states, what a caller asks for (spec), the record of a command and its events."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from linebridge.model import CommandKind, CommandRequest, Identity, Pose, Value


class CommandState(IntEnum):
    """Lifecycle states; numbers match linebridge.v1.CommandState."""

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


@dataclass(slots=True)
class CommandSpec:
    """What a caller asks for, before validation (values as the caller sent them)."""

    device_id: str
    kind: CommandKind
    writes: list[tuple[str, Any]] = field(default_factory=list)
    method: str = ""
    args: list[Any] = field(default_factory=list)
    joint_positions: list[float] = field(default_factory=list)
    pose: Pose | None = None
    speed: float = 0.0
    acceleration: float = 0.0
    program: str = ""
    idempotency_key: str = ""
    timeout: float | None = None
    origin: str = "grpc"
    # Who asked; None only for callers inside the bridge process (tests, the demo).
    identity: Identity | None = None


@dataclass(slots=True)
class CommandRecord:
    """A command and where it is in its lifecycle."""

    id: str
    spec: CommandSpec
    state: CommandState = CommandState.QUEUED
    progress: float = 0.0
    progress_message: str = ""
    result: list[Value] = field(default_factory=list)
    error_reason: str = ""
    error_message: str = ""
    created_ns: int = field(default_factory=time.time_ns)
    updated_ns: int = field(default_factory=time.time_ns)
    request: CommandRequest | None = None
    deadline: float = math.inf  # loop time
    watchers: list[asyncio.Queue[CommandEvent]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None
    command_class: str = ""  # write, invoke, motion, program or stop, as the device's policy sees it
    audit_seq: int = 0  # seq of its "accepted" audit record; 0 when it was never accepted
    cancelled_by: str = ""  # identity name of whoever cancelled it ("local" inside the bridge)
    cancelled_ns: int = 0


@dataclass(frozen=True, slots=True)
class CommandEvent:
    """One state change or progress report of a command, as it was at that moment."""

    command_id: str
    state: CommandState
    progress: float
    progress_message: str
    result: tuple[Value, ...]
    error_reason: str
    error_message: str
    time_ns: int
    cancelled_by: str = ""

    @classmethod
    def of(cls, record: CommandRecord) -> CommandEvent:
        """The event that reports a command's current state."""
        return cls(
            record.id,
            record.state,
            record.progress,
            record.progress_message,
            tuple(record.result),
            record.error_reason,
            record.error_message,
            record.updated_ns,
            record.cancelled_by,
        )


# What an idempotency key stands for: the whole request, not who sent it or through which channel.
_REQUEST_FIELDS = (
    "device_id",
    "kind",
    "writes",
    "method",
    "args",
    "joint_positions",
    "pose",
    "speed",
    "acceleration",
    "program",
    "timeout",
)


def request_of(spec: CommandSpec) -> tuple[Any, ...]:
    """The parts of a spec that make it the same command (for idempotency-key reuse)."""
    return tuple(getattr(spec, name) for name in _REQUEST_FIELDS)
