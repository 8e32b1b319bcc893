"""A deadman (hold-to-run) switch for continuous motion: no heartbeat within the interval, and the
bridge sends the device a Stop. Jogging and streamed targets hold one while they move the robot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from linebridge.commands.audit import CommandAudit, who
from linebridge.commands.types import CommandSpec
from linebridge.errors import FailedPrecondition, LinebridgeError
from linebridge.model import CommandKind, Identity, Role

log = logging.getLogger(__name__)


class Deadman:
    """Armed on creation; `beat()` within `interval` seconds keeps it armed, a lapse trips it once."""

    def __init__(
        self,
        device_id: str,
        identity: Identity | None,
        interval: float,
        on_trip: Callable[[Deadman, str], None],
    ) -> None:
        self.device_id, self.identity, self.interval = device_id, identity, interval
        self._on_trip = on_trip
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(
            interval, self.trip, "heartbeat lapsed"
        )
        self.tripped = ""  # why it tripped; empty while armed or after a release

    @property
    def armed(self) -> bool:
        """Whether the deadman still watches for heartbeats."""
        return self._timer is not None

    def beat(self) -> None:
        """The holder is still there: restart the interval. FailedPrecondition once it has tripped."""
        if self._timer is None:
            raise FailedPrecondition(
                f"the deadman for {self.device_id!r} is no longer armed"
                + (f" ({self.tripped}; a stop was sent)" if self.tripped else "")
            )
        self._timer.cancel()
        self._timer = self._loop.call_later(self.interval, self.trip, "heartbeat lapsed")

    def trip(self, reason: str) -> None:
        """Send the Stop now (the holder's stream broke, or the heartbeat lapsed). Idempotent."""
        if self._timer is None:
            return
        self._timer.cancel()
        self._timer = None
        self.tripped = reason
        self._on_trip(self, reason)

    def release(self) -> None:
        """Disarm without a Stop (the holder ended its motion itself, or the bridge shuts down)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def stop_on_trip(
    handle: Deadman, reason: str, submit: Callable[[CommandSpec], object], audit: CommandAudit | None
) -> None:
    """A tripped deadman: audit the trip, then submit a Stop for its device in the deadman's name."""
    holder = who(handle.identity)
    if audit is not None:
        audit.event(
            "control_system_event",
            "deadman.tripped",
            "success",
            who=holder,
            what={"device": handle.device_id, "interval": handle.interval},
            reason=reason,
        )
    spec = CommandSpec(
        handle.device_id,
        CommandKind.STOP,
        origin=f"deadman:{holder['name']}",
        identity=Identity("deadman", Role.OPERATOR, peer=holder["name"], via="local"),
    )
    try:
        submit(spec)
    except LinebridgeError as exc:
        log.error(
            "deadman of %s on %s tripped (%s), but the stop was refused: %s",
            holder["name"],
            handle.device_id,
            reason,
            exc,
        )
