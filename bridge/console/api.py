"""The console's JSON API: every handler calls the bridge through the session's own client."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from linebridge.api import pb
from linebridge.client import ClientError, Command, InvalidArgument, ValueType
from linebridge.console.sessions import Session
from linebridge.console.views import device_json, error_json, event_json, message_json

STATUS = {
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}
SIGNAL_LIMIT = 500  # rows the Signals page lists for one search
# Services other work adds to the API; the console probes them and says plainly when a bridge lacks one.
OPTIONAL = {
    "alarms": "/linebridge.v1.AlarmService/ListAlarms",
    "efficiency": "/linebridge.v1.EfficiencyService/GetEfficiency",
    "transport": "/linebridge.v1.TransportService/ListTransporters",
}
Handler = Callable[[Request, Session], Awaitable[Any]]


def bad(message: str) -> InvalidArgument:
    """A request the console refuses before asking the bridge (HTTP 400)."""
    return InvalidArgument(message, grpc.StatusCode.INVALID_ARGUMENT)


def bridge_call(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A route that runs `handler` with the request's session; bridge errors become JSON with a status."""

    async def route(request: Request) -> Response:
        session: Session = request.state.session
        try:
            return JSONResponse(await handler(request, session))
        except ValueError as exc:  # a body that is not JSON, or not the shape a route takes
            return JSONResponse({"error": "InvalidArgument", "message": f"bad request: {exc}"}, 400)
        except ClientError as exc:
            return JSONResponse(error_json(exc), status_code=STATUS.get(exc.code, 502))  # type: ignore[arg-type]

    return route


async def devices(request: Request, session: Session) -> Any:
    """Every device with its signals."""
    assert session.client is not None
    return {"devices": [device_json(d) for d in await session.client.devices()]}


async def approve(request: Request, session: Session) -> Any:
    """Approve a discovered device (the bridge checks the admin role)."""
    assert session.client is not None
    return {"device": device_json(await session.client.approve(request.path_params["device"]))}


async def signals(request: Request, session: Session) -> Any:
    """Signals whose full path matches the glob `q`, with their latest value, unit, quality and age."""
    assert session.client is not None
    query = request.query_params.get("q", "") or "*"
    glob = query if any(c in query for c in "*?[") else f"*{query}*"
    rows = []
    for d in await session.client.devices():
        rows += [
            {"path": s.full_path, "unit": s.unit, "type": s.value_type.name, "writable": s.writable}
            for s in d.signals.values()
            if fnmatch.fnmatchcase(s.full_path, glob)
        ]
    rows = rows[:SIGNAL_LIMIT]
    return {"signals": rows, "limited": len(rows) == SIGNAL_LIMIT}


async def read(request: Request, session: Session) -> Any:
    """Current values of the signals matching `path` (?device=1: asked from the device, not the latest)."""
    assert session.client is not None
    path = request.query_params.get("path", "")
    if not path:
        raise bad("read needs ?path=DEVICE/SIGNAL (globs allowed)")
    batch = await session.client.read([path], from_device=request.query_params.get("device") == "1")
    latest = batch.latest()
    rows = []
    for entry in batch.catalog.entries:
        sample = latest.get(entry.path)
        value = None if sample is None else sample.value
        rows.append(
            {
                "path": entry.path,
                "unit": entry.unit,
                "value": value if isinstance(value, int | float | bool | None) else str(value),
            }
        )
    return {"values": rows}


def _coerce(raw: Any, value_type: str) -> Any:
    """A value from the page, as the signal's or argument's type."""
    try:
        if value_type == ValueType.DOUBLE.name:
            return float(raw)
        if value_type == ValueType.INT.name:
            return int(raw)
        if value_type == ValueType.BOOL.name:
            if isinstance(raw, bool):
                return raw
            return {"true": True, "1": True, "false": False, "0": False}[str(raw).strip().lower()]
        return str(raw)
    except (ValueError, KeyError):
        raise bad(f"{raw!r} is not a {value_type.lower()} value") from None


async def _action(session: Session, body: dict[str, Any]) -> dict[str, Any]:
    """The execute() keyword arguments for the page's action, values typed by the device's description."""
    assert session.client is not None
    device = await session.client.device(str(body.get("device", "")))
    action = body.get("action")
    if action == "write":
        path = str(body.get("signal", "")).removeprefix(device.id + "/")
        signal = device.signals.get(path)
        if signal is None:
            raise bad(f"device {device.id} has no signal {path!r}")
        return {"write": {path: _coerce(body.get("value"), signal.value_type.name)}}
    if action == "invoke":
        method = device.methods.get(str(body.get("method", "")))
        if method is None:
            raise bad(f"device {device.id} has no method {body.get('method')!r}")
        args = list(body.get("args") or [])
        if len(args) != len(method.inputs):
            raise bad(f"{method.name} takes {len(method.inputs)} argument(s)")
        return {
            "invoke": method.name,
            "args": [_coerce(a, i.value_type.name) for a, i in zip(args, method.inputs, strict=True)],
        }
    if action == "stop":
        return {"stop": True}
    if action == "move_joints":
        return {"move_joints": [_coerce(p, ValueType.DOUBLE.name) for p in body.get("positions") or []]}
    if action == "run_program":
        return {"run_program": str(body.get("program", ""))}
    raise bad(f"unknown action {action!r} (write, invoke, stop, move_joints, run_program)")


async def execute(request: Request, session: Session) -> Any:
    """Send a command under the user's own token; its events follow over the session's WebSockets."""
    assert session.client is not None
    body = await request.json()
    if not isinstance(body, dict):
        raise bad("a command is a JSON object: {device, action, ...}")
    kwargs = await _action(session, body)
    command = await session.client.execute(str(body["device"]), **kwargs)
    task = asyncio.create_task(_follow(session, command), name=f"console-command-{command.id}")
    session.tasks.add(task)
    task.add_done_callback(session.tasks.discard)
    return {"command": event_json(command.history[0], command.device_id)}


async def _follow(session: Session, command: Command) -> None:
    """Push every event of a command to the session's open pages."""
    try:
        async for event in command.events():
            message = {"t": "command", "event": event_json(event, command.device_id)}
            for socket in list(session.sockets):
                await socket.send_json(message)
    except ClientError as exc:
        for socket in list(session.sockets):
            await socket.send_json({"t": "command_error", "id": command.id, **error_json(exc)})


async def cancel(request: Request, session: Session) -> Any:
    """Ask the bridge to cancel a command (the SDK's Cancel stub: the page may not hold its handle)."""
    assert session.client is not None
    cancel_request = pb.command.CancelRequest(command_id=request.path_params["command"])
    response = await session.client._unary(session.client.stubs.commands.Cancel, cancel_request)
    return {"state": message_json(response.command).get("state", "")}


async def history(request: Request, session: Session) -> Any:
    """Recent commands from ListCommands, newest first."""
    assert session.client is not None
    device = request.query_params.get("device", "")
    return {"commands": [event_json(e) for e in await session.client.commands(device, limit=100)]}


async def uplink(request: Request, session: Session) -> Any:
    """GetUplinkStatus as JSON."""
    assert session.client is not None
    return {"status": message_json(await session.client.uplink_status())}


async def optional_service(request: Request, session: Session) -> Any:
    """Whether the bridge implements an optional service (alarms, transport): UNIMPLEMENTED says no."""
    assert session.client is not None
    name = request.path_params["service"]
    method = OPTIONAL.get(name)
    if method is None:
        return {"available": False, "reason": f"unknown service {name!r}"}
    call = session.client.channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        await call(b"", timeout=5)
    except grpc.RpcError as exc:
        if exc.code() is grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
            return {
                "available": False,
                "reason": f"not available on this bridge ({method} is not implemented)",
            }
        return {"available": True, "reason": f"{exc.code().name}: {exc.details()}"}  # type: ignore[attr-defined]
    return {"available": True, "reason": ""}


def routes() -> list[Route]:
    """The JSON API under /api (session and login routes live in app.py)."""
    return [
        Route("/api/devices", bridge_call(devices)),
        Route("/api/devices/{device}/approve", bridge_call(approve), methods=["POST"]),
        Route("/api/signals", bridge_call(signals)),
        Route("/api/read", bridge_call(read)),
        Route("/api/commands", bridge_call(history)),
        Route("/api/commands", bridge_call(execute), methods=["POST"]),
        Route("/api/commands/{command}/cancel", bridge_call(cancel), methods=["POST"]),
        Route("/api/uplink", bridge_call(uplink)),
        Route("/api/services/{service}", bridge_call(optional_service)),
    ]
