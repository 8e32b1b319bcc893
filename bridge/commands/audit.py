"""Audit records of commands: who asked, what for which device, when, and how it ended.

Fields follow IEC 62443-4-2 CR 2.8 (auditable events): timestamp (`time`, UTC), source (`source`,
the bridge; `who`, the requester), category (`category`: access_control, request_error,
control_system_event, audit_log_event), type (`type`), event id (`event_id`) and result (`result`).
A command gets an `command.accepted` record before it can reach its device and a `command.finished`
record with its outcome; a refused one gets one `command.denied` (role) or `command.rejected` record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from linebridge.audit.log import AuditLog, utc_timestamp
from linebridge.errors import AuditFailure, AuditFull, LinebridgeError, PermissionDenied, RateLimited
from linebridge.model import CommandKind, Identity

if TYPE_CHECKING:
    from linebridge.commands.types import CommandRecord, CommandSpec

log = logging.getLogger(__name__)
_SUPPRESS_SECONDS = (
    1.0  # rate-limited and transport-level refusals of one caller: at most one record this often
)


@dataclass(slots=True)
class StopWindow:
    """Stops of one caller to one device within a second of the one that was recorded."""

    start: float
    who: dict[str, str]
    timer: asyncio.TimerHandle | None
    count: int = 0  # Stops since, without a record of their own
    last_command_id: str = ""


def who(identity: Identity | None) -> dict[str, str]:
    """The requester as recorded: name, role, peer address (or Sparkplug topic), channel."""
    if identity is None:
        return {"name": "local", "role": "admin", "peer": "", "via": "local"}
    return {
        "name": identity.name,
        "role": identity.role.name.lower(),
        "peer": identity.peer,
        "via": identity.via,
    }


class CommandAudit:
    """Writes the audit records of the command lifecycle; only `accepted` may refuse (raise)."""

    def __init__(self, audit: AuditLog, max_value_chars: int = 1024) -> None:
        self.log = audit
        self.max_chars = max_value_chars
        self._last_limited: dict[str, tuple[float, int]] = {}  # identity -> (last recorded, suppressed since)
        self._last_body: dict[str, dict[str, Any]] = {}  # identity -> its latest suppressed record
        self._flushes: dict[str, asyncio.TimerHandle] = {}  # identity -> its window's end
        self._stops: dict[tuple[str, str], StopWindow] = {}  # (identity, device) -> its open window
        self._failing = False

    def accepted(self, record: CommandRecord) -> int:
        """Record that a command was accepted; its seq (0: no record of its own). AuditFailure refuses it."""
        body = self._body(record, "control_system_event", "command.accepted", "success")
        if record.spec.kind is CommandKind.STOP:
            return self._stop_accepted(record, body)
        return self.log.append(body)

    def _stop_accepted(self, record: CommandRecord, body: dict[str, Any]) -> int:
        """A Stop: written into the Stop reserve; the repeats of one caller to one device within a second
        are counted into one record when the second ends. A full budget never refuses a Stop (a disk
        that fails does: the Stop would run unaudited)."""
        key = (body["who"]["name"], record.spec.device_id)
        window = self._stops.get(key)
        now = time.monotonic()
        if window is not None and now - window.start < _SUPPRESS_SECONDS:
            window.count += 1
            window.last_command_id = record.id
            return 0
        if window is not None:
            self._close_stops(key)
        try:
            seq = self.log.append(body, stop=True)
        except AuditFull as exc:
            log.error("audit: stop %s on %s runs without its record: %s", record.id, key[1], exc)
            return 0
        self._stops[key] = StopWindow(
            now, body["who"], self._later(_SUPPRESS_SECONDS, self._close_stops, key)
        )
        return seq

    def _close_stops(self, key: tuple[str, str]) -> None:
        window = self._stops.pop(key, None)
        if window is None:
            return
        if window.timer is not None:
            window.timer.cancel()
        if window.count:
            body = {
                "category": "control_system_event",
                "type": "command.stops_coalesced",
                "result": "success",
                "who": window.who,
                "what": {"device": key[1], "count": window.count, "last_command_id": window.last_command_id},
                "window_seconds": _SUPPRESS_SECONDS,
            }
            self._append(body, reserve=True, stop=True)

    @staticmethod
    def _later(delay: float, fn: Any, *args: Any) -> asyncio.TimerHandle | None:
        try:
            return asyncio.get_running_loop().call_later(delay, fn, *args)
        except RuntimeError:  # no loop (a synchronous caller): closed by the next record or close()
            return None

    async def durable(self, seq: int) -> None:
        """Wait until record `seq` is on disk (AuditFailure if it cannot be)."""
        await self.log.durable(seq)

    def rejected(self, record: CommandRecord, error: LinebridgeError) -> None:
        """Record a refused command (never raises: the caller already gets its refusal)."""
        denied = isinstance(error, PermissionDenied)
        body = self._body(
            record,
            "access_control" if denied else "request_error",
            "command.denied" if denied else "command.rejected",
            "failure",
        )
        if isinstance(error, RateLimited):
            suppressed = self._suppress(body["who"]["name"], body)
            if suppressed is None:
                return
            if suppressed:
                body["suppressed"] = suppressed
        self._append(body, reserve=False)

    def finished(self, record: CommandRecord) -> None:
        """Record how an accepted command ended (never raises; may use the reserve)."""
        result = "success" if record.state.name == "SUCCEEDED" else "failure"
        body = self._body(record, "control_system_event", "command.finished", result)
        self._append(body, reserve=True, stop=record.spec.kind is CommandKind.STOP)

    def event(self, category: str, type_: str, result: str, **fields: Any) -> None:
        """Record another event (e.g. a deadman lapse); never raises."""
        self._append({"category": category, "type": type_, "result": result, **fields}, reserve=True)

    def cancel_refused(self, identity: Identity | None, what: dict[str, Any], reason: str) -> None:
        """A Cancel refused by the per-device role of the command's class."""
        self.event("access_control", "command.cancel", "failure", who=who(identity), what=what, reason=reason)

    def call_denied(self, identity: Identity | None, method: str, code: Any, reason: str, peer: str) -> None:
        """A call refused before any command existed (authentication, the RPC's role, gRPC limits).

        Recorded at most once a second per caller, with the count of those not recorded in between,
        so that a flood of refused calls cannot fill the audit budget that commands need.
        """
        caller = (
            who(identity)
            if identity is not None
            else {"name": "unauthenticated", "role": "", "peer": peer, "via": "grpc"}
        )
        body: dict[str, Any] = {
            "category": "access_control",
            "type": "rpc.denied",
            "result": "failure",
            "who": caller,
            "what": {"method": method},
            "outcome": {"reason": getattr(code, "name", str(code)), "message": reason},
        }
        suppressed = self._suppress(caller["name"] if identity is not None else peer.rpartition(":")[0], body)
        if suppressed is None:
            return
        if suppressed:
            body["suppressed"] = suppressed
        self._append(body, reserve=False)

    def _append(self, body: dict[str, Any], reserve: bool, stop: bool = False) -> None:
        try:
            self.log.append(body, reserve, stop)
        except AuditFailure as exc:
            if not self._failing:  # once per outage, not once per refused call
                log.error("audit: record %s not written: %s", body.get("type"), exc)
            self._failing = True
        else:
            self._failing = False

    def _suppress(self, name: str, body: dict[str, Any]) -> int | None:
        """None to skip this record; else how many were skipped before it.

        A skipped record's count is written when its one-second window closes, even when no later
        record of that caller comes to carry it.
        """
        now = time.monotonic()
        last, skipped = self._last_limited.get(name, (-_SUPPRESS_SECONDS, 0))
        if now - last < _SUPPRESS_SECONDS:
            self._last_limited[name] = (last, skipped + 1)
            self._last_body[name] = body
            if name not in self._flushes:
                self._schedule_flush(name, last + _SUPPRESS_SECONDS - now)
            return None
        if len(self._last_limited) > 10_000:
            self._last_limited.clear()
        self._last_limited[name] = (now, 0)
        self._cancel_flush(name)
        return skipped

    def _schedule_flush(self, name: str, delay: float) -> None:
        handle = self._later(max(0.0, delay), self._flush, name)
        if handle is not None:  # without a loop the next record carries the count
            self._flushes[name] = handle

    def _cancel_flush(self, name: str) -> None:
        handle = self._flushes.pop(name, None)
        if handle is not None:
            handle.cancel()
        self._last_body.pop(name, None)

    def _flush(self, name: str) -> None:
        """The window closed with records skipped: write the last of them now, counting those before it."""
        self._flushes.pop(name, None)
        body = self._last_body.pop(name, None)
        _, skipped = self._last_limited.get(name, (0.0, 0))
        if body is None or not skipped:
            return
        self._last_limited[name] = (time.monotonic(), 0)
        self._append({**body, **({"suppressed": skipped - 1} if skipped > 1 else {})}, reserve=False)

    def close(self) -> None:
        """Write the counts of windows still open (the bridge is stopping) and cancel their timers."""
        for name in list(self._flushes):
            self._flushes[name].cancel()
            self._flush(name)
        for key in list(self._stops):
            self._close_stops(key)

    # -- record bodies -----------------------------------------------------------------------
    def _body(self, record: CommandRecord, category: str, type_: str, result: str) -> dict[str, Any]:
        spec = record.spec
        body: dict[str, Any] = {
            "category": category,
            "type": type_,
            "result": result,
            "who": who(spec.identity),
            "what": {
                "device": spec.device_id,
                "action": str(spec.kind),
                "class": record.command_class or spec.kind.command_class,
                "command_id": record.id,
                "arguments": self._arguments(spec),
            },
            "origin": spec.origin,
        }
        if spec.idempotency_key:
            body["what"]["idempotency_key"] = spec.idempotency_key
        if spec.origin.startswith("sparkplug:"):
            body["sparkplug_topic"] = spec.origin.removeprefix("sparkplug:")
        if record.cancelled_by:
            body["cancelled_by"] = {"name": record.cancelled_by, "time": utc_timestamp(record.cancelled_ns)}
        if record.state.final:
            body["outcome"] = {
                "state": record.state.name,
                "reason": record.error_reason,
                "message": self._short(record.error_message or record.progress_message),
            }
            if record.result:
                body["outcome"]["result"] = [self._short(v) for v in record.result]
        return body

    def _arguments(self, spec: CommandSpec) -> dict[str, Any]:
        kind = spec.kind
        if kind is CommandKind.WRITE:
            return {"writes": [{"path": p, "value": self._short(v)} for p, v in spec.writes]}
        if kind is CommandKind.INVOKE:
            return {"method": spec.method, "args": [self._short(a) for a in spec.args]}
        if kind is CommandKind.MOVE_JOINTS:
            return {
                "joint_positions": list(spec.joint_positions),
                "speed": spec.speed,
                "acceleration": spec.acceleration,
            }
        if kind is CommandKind.MOVE_LINEAR:
            pose = spec.pose
            target = (
                None if pose is None else {a: getattr(pose, a) for a in ("x", "y", "z", "rx", "ry", "rz")}
            )
            return {"pose": target, "speed": spec.speed, "acceleration": spec.acceleration}
        if kind is CommandKind.RUN_PROGRAM:
            return {"program": self._short(spec.program)}
        return {}

    def _short(self, value: Any) -> Any:
        if isinstance(value, str) and len(value) > self.max_chars:
            return f"{value[: self.max_chars]}...[{len(value)} chars]"
        if isinstance(value, bytes):
            return f"<{len(value)} bytes>"
        return value
