"""JSON shapes of the SDK's objects for the page (plain dicts; enums by name)."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict

from linebridge.client import ClientError, CommandEvent, CommandRefused, Device


def device_json(d: Device) -> dict[str, Any]:
    """A device row with its signals and capabilities."""
    return {
        "id": d.id,
        "name": d.name,
        "kind": d.kind.name,
        "state": d.state.name,
        "state_reason": d.state_reason,
        "driver": d.driver,
        "endpoint": d.endpoint,
        "vendor": d.vendor,
        "model": d.model,
        "source": d.source,
        "identity": d.identity,
        "approval": "waiting for an admin" if d.state.name == "DISCOVERED" else "approved",
        "commands": list(d.commands),
        "methods": [
            {"name": m.name, "inputs": [{"name": a.name, "type": a.value_type.name} for a in m.inputs]}
            for m in d.methods.values()
        ],
        "signals": [
            {
                "path": s.full_path,
                "type": s.value_type.name,
                "unit": s.unit,
                "writable": s.writable,
                "description": s.description,
            }
            for s in d.signals.values()
        ],
    }


def event_json(e: CommandEvent, device: str = "") -> dict[str, Any]:
    """One command event."""
    return {
        "id": e.command_id,
        "device": device,
        "state": e.state.name,
        "final": e.state.final,
        "progress": e.progress,
        "message": e.progress_message,
        "result": [v if isinstance(v, int | float | bool) else str(v) for v in e.result],
        "error_reason": e.error_reason,
        "error_message": e.error_message,
        "time_ms": e.time_ns / 1e6,
    }


def error_json(exc: ClientError) -> dict[str, Any]:
    """A bridge error as the page shows it: its kind, the bridge's message, and a refusing gate."""
    out: dict[str, Any] = {"error": type(exc).__name__, "message": exc.message}
    if exc.code is not None:
        out["code"] = exc.code.name
    if isinstance(exc, CommandRefused):
        out["gate"] = exc.gate
    return out


def message_json(message: Any) -> dict[str, Any]:
    """A protobuf message as JSON (field names as in the proto)."""
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
