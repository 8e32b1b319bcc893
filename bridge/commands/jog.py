"""Jogging and streamed targets: continuous motion of one device, held by a deadman.

Every message of the holder is a heartbeat. Each new target replaces the one before (cancelled if it
has not ended) and passes the same gates as any command. When the holder ends, breaks off, or goes
silent for longer than the deadman interval, the device gets a Stop, so motion never outlives the
client that drives it.
"""

from __future__ import annotations

from linebridge.commands.manager import CommandManager
from linebridge.commands.types import CommandRecord, CommandSpec
from linebridge.errors import InvalidArgument
from linebridge.model import CommandKind, Identity

_TARGETS = (CommandKind.MOVE_JOINTS, CommandKind.MOVE_LINEAR)


class JogSession:
    """One holder's continuous motion of one device."""

    def __init__(
        self,
        commands: CommandManager,
        device_id: str,
        identity: Identity | None,
        interval: float | None = None,
        origin: str = "jog",
    ) -> None:
        self.commands, self.device_id, self.identity, self.origin = commands, device_id, identity, origin
        self.deadman = commands.deadman(device_id, identity, interval)
        self.current: CommandRecord | None = None
        self.moved = False

    def heartbeat(self) -> None:
        """The holder is still there (FailedPrecondition once the deadman has tripped)."""
        self.deadman.beat()

    def target(self, spec: CommandSpec) -> CommandRecord:
        """Submit the next target in place of the current one; raises like CommandManager.submit."""
        self.deadman.beat()
        if spec.kind not in _TARGETS:
            raise InvalidArgument(f"a jog target is move_joints or move_linear, not {spec.kind}")
        spec.device_id, spec.identity, spec.origin = self.device_id, self.identity, self.origin
        previous = self.current
        self.current, _ = self.commands.submit(spec)  # queued behind the previous target, gates passed
        self.moved = True
        if previous is not None and not previous.state.final:
            self.commands.cancel(previous.id, "replaced by the next jog target", self.identity)
        return self.current

    def end(self, reason: str = "jog stream ended") -> None:
        """The holder let go: Stop the device if this session moved it, else just disarm."""
        if self.moved:
            self.deadman.trip(reason)
        else:
            self.deadman.release()
