"""A command as the caller sent it, checked against what its device described: a CommandRequest."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from linebridge.errors import InvalidArgument, NotFound, Unsupported
from linebridge.model import CommandKind, CommandRequest, Value, coerce
from linebridge.registry import DeviceRecord

if TYPE_CHECKING:
    from linebridge.commands.types import CommandSpec


def resolve(spec: CommandSpec, device: DeviceRecord) -> CommandRequest:
    """Signals and methods looked up, values coerced to their types; InvalidArgument/NotFound/Unsupported."""
    desc = device.description
    offered = desc.commands if desc is not None else frozenset()
    if spec.kind not in offered:
        supported = ", ".join(sorted(offered)) or "none"
        raise Unsupported(
            f"device {device.id!r} does not support {spec.kind} commands (supports: {supported})"
        )
    request = CommandRequest(
        kind=spec.kind, speed=spec.speed, acceleration=spec.acceleration, program=spec.program, pose=spec.pose
    )
    if spec.kind is CommandKind.WRITE:
        request.writes = _writes(spec, device)
    elif spec.kind is CommandKind.INVOKE:
        request.method, request.args = _call(spec, device)
    elif spec.kind is CommandKind.MOVE_JOINTS:
        if not spec.joint_positions or not all(math.isfinite(p) for p in spec.joint_positions):
            raise InvalidArgument("move_joints needs finite joint positions")
        request.joint_positions = list(spec.joint_positions)
    elif spec.kind is CommandKind.MOVE_LINEAR:
        pose = spec.pose
        if pose is None or not all(
            math.isfinite(v) for v in (pose.x, pose.y, pose.z, pose.rx, pose.ry, pose.rz)
        ):
            raise InvalidArgument("move_linear needs a target pose of finite numbers")
    if not (spec.speed >= 0 and spec.acceleration >= 0):  # also refuses NaN
        raise InvalidArgument("speed and acceleration must not be negative")
    return request


def check_sizes(spec: CommandSpec, cap: int) -> None:
    """InvalidArgument when a string or bytes value of the command is over `cap` bytes."""
    items = [(f"write of {path!r}", value) for path, value in spec.writes]
    items += [(f"{spec.method} argument {n}", value) for n, value in enumerate(spec.args, start=1)]
    items.append(("program name", spec.program))
    for what, value in items:
        size = _size(value)
        if size > cap:
            raise InvalidArgument(
                f"{what}: value of {size} bytes is over the cap of {cap} bytes (commands.max_value_bytes)"
            )


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, list | tuple):
        return sum(_size(v) for v in value)
    return 0


def _writes(spec: CommandSpec, device: DeviceRecord) -> list[tuple[Any, Value]]:
    if not spec.writes:
        raise InvalidArgument("write needs at least one signal")
    resolved = []
    for path, value in spec.writes:  # relative to the device, taken as given (a path may begin like the id)
        signal = _signal(device, path)
        if not signal.access.writable:
            raise InvalidArgument(f"signal {device.id}/{signal.path} is read-only")
        try:
            resolved.append((signal, coerce(value, signal.value_type)))
        except InvalidArgument as exc:
            raise InvalidArgument(f"{device.id}/{signal.path}: {exc}") from None
    return resolved


def _signal(device: DeviceRecord, path: str) -> Any:
    """The device's signal at `path` (relative to the device); NotFound says which form is expected."""
    try:
        return device.signal(path)
    except NotFound:
        prefix = f"{device.id}/"
        if path.startswith(prefix) and path[len(prefix) :] in device.signals:
            raise NotFound(
                f"device {device.id!r} has no signal {path!r}; SignalWrite.path is relative to the "
                f"device: write {path[len(prefix) :]!r}"
            ) from None
        raise


def _call(spec: CommandSpec, device: DeviceRecord) -> tuple[Any, list[Value]]:
    methods = {m.name: m for m in device.description.methods} if device.description else {}
    method = methods.get(spec.method)
    if method is None:
        raise NotFound(
            f"device {device.id!r} has no method {spec.method!r}"
            f" (methods: {', '.join(sorted(methods)) or 'none'})"
        )
    if len(spec.args) != len(method.inputs):
        raise InvalidArgument(f"{spec.method} takes {len(method.inputs)} argument(s), got {len(spec.args)}")
    args = []
    for arg, value in zip(method.inputs, spec.args, strict=True):
        try:
            args.append(coerce(value, arg.value_type))
        except InvalidArgument as exc:
            raise InvalidArgument(f"{spec.method} argument {arg.name!r}: {exc}") from None
    return method, args
