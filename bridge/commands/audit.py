"""Audit records of commands: who asked, what for which device, when, and how it ended.

Fields follow IEC 62443-4-2 CR 2.8 (auditable events): timestamp (`time`, UTC), source (`source`,
the bridge; `who`, the requester), category (`category`: access_control, request_error,
control_system_event, audit_log_event), type (`type`), event id (`event_id`) and result (`result`).
A command gets an `command.accepted` record before it can reach its device and a `command.finished`
record with its outcome; a refused one gets one `command.denied` (role) or `command.rejected` record.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from linebridge.audit.log import AuditFailure, AuditLog
from linebridge.commands.ratelimit import RateLimited
from linebridge.errors import LinebridgeError, PermissionDenied
from linebridge.model import CommandKind, Identity

if TYPE_CHECKING:
    from linebridge.commands.types import CommandRecord, CommandSpec

log = logging.getLogger(__name__)
_SUPPRESS_SECONDS = (
    1.0  # rate-limited and transport-level refusals of one caller: at most one record this often
)


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
        self._failing = False

    def accepted(self, record: CommandRecord) -> int:
        """Record that a command was accepted; its seq. AuditFailure refuses the command."""
        reserve = record.spec.kind is CommandKind.STOP  # a Stop may use the reserve
        return self.log.append(
            self._body(record, "control_system_event", "command.accepted", "success"), reserve
        )

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
            suppressed = self._suppress(body["who"]["name"])
            if suppressed is None:
                return
            if suppressed:
                body["suppressed"] = suppressed
        self._append(body, reserve=False)

    def finished(self, record: CommandRecord) -> None:
        """Record how an accepted command ended (never raises; may use the reserve)."""
        result = "success" if record.state.name == "SUCCEEDED" else "failure"
        self._append(self._body(record, "control_system_event", "command.finished", result), reserve=True)

    def event(self, category: str, type_: str, result: str, **fields: Any) -> None:
        """Record another event (e.g. a deadman lapse); never raises."""
        self._append({"category": category, "type": type_, "result": result, **fields}, reserve=True)

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
        suppressed = self._suppress(caller["name"] if identity is not None else peer.rpartition(":")[0])
        if suppressed is None:
            return
        body: dict[str, Any] = {
            "category": "access_control",
            "type": "rpc.denied",
            "result": "failure",
            "who": caller,
            "what": {"method": method},
            "outcome": {"reason": getattr(code, "name", str(code)), "message": reason},
        }
        if suppressed:
            body["suppressed"] = suppressed
        self._append(body, reserve=False)

    def _append(self, body: dict[str, Any], reserve: bool) -> None:
        try:
            self.log.append(body, reserve)
        except AuditFailure as exc:
            if not self._failing:  # once per outage, not once per refused call
                log.error("audit: record %s not written: %s", body.get("type"), exc)
            self._failing = True
        else:
            self._failing = False

    def _suppress(self, name: str) -> int | None:
        """None to skip this record; else how many were skipped before it."""
        now = time.monotonic()
        last, skipped = self._last_limited.get(name, (-_SUPPRESS_SECONDS, 0))
        if now - last < _SUPPRESS_SECONDS:
            self._last_limited[name] = (last, skipped + 1)
            return None
        if len(self._last_limited) > 10_000:
            self._last_limited.clear()
        self._last_limited[name] = (now, 0)
        return skipped

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
