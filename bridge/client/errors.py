"""Exceptions of the client SDK: one class per gRPC status code, carrying the bridge's message.

Each class also derives from the matching domain error in `linebridge.errors`, so code that catches
`linebridge.errors.NotFound` works on both sides of the wire.
"""

from __future__ import annotations

import re

import grpc

from linebridge import errors


class ClientError(errors.LinebridgeError):
    """Base of every error the SDK raises; `code` is the gRPC status (None for client-side errors)."""

    code: grpc.StatusCode | None = None

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(ClientError, errors.NotFound):
    """An unknown device, signal, method or command (NOT_FOUND)."""


class DeviceNotFound(NotFound):
    """The bridge knows no device of that id."""


class CommandNotFound(NotFound):
    """The bridge knows no command of that id (it may have restarted since)."""


class InvalidArgument(ClientError, errors.InvalidArgument):
    """A malformed path glob, a value of the wrong type, a bad request field (INVALID_ARGUMENT)."""


class FailedPrecondition(ClientError, errors.FailedPrecondition):
    """The bridge or device is not in a state to do this (FAILED_PRECONDITION)."""


class CommandRefused(FailedPrecondition):
    """A command gate refused the command; `gate` names the rule, e.g. "motion_enabled" or "require x"."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None, gate: str | None = None) -> None:
        super().__init__(message, code)
        self.gate = gate if gate is not None else _gate_of(message)


class Unavailable(ClientError, errors.Unavailable):
    """Something on the way is not reachable (UNAVAILABLE)."""


class DeviceUnavailable(Unavailable):
    """The device is offline, connecting, or its connection broke."""


class BridgeUnavailable(Unavailable):
    """The bridge itself cannot be reached (not running, network down)."""


class PermissionDenied(ClientError, errors.PermissionDenied):
    """The caller's role does not allow this (PERMISSION_DENIED)."""


class Unauthenticated(ClientError):
    """No valid token or client certificate (UNAUTHENTICATED)."""


class ResourceExhausted(ClientError, errors.ResourceExhausted):
    """A limit was hit: rate limit, full command queue, too many subscriptions (RESOURCE_EXHAUSTED)."""


class DeadlineExceeded(ClientError, errors.DeadlineExceeded):
    """The call did not finish in time (DEADLINE_EXCEEDED)."""


class DeviceError(ClientError, errors.DeviceError):
    """The device answered but refused or failed the operation (ABORTED)."""


class Cancelled(ClientError):
    """The call was cancelled (CANCELLED)."""


class CommandFailed(ClientError):
    """A command ended FAILED, TIMED_OUT or CANCELLED; `reason` is the bridge's machine-readable reason."""

    def __init__(self, message: str, reason: str = "", state: str = "FAILED", command_id: str = "") -> None:
        super().__init__(f"{command_id or 'command'} {state}: {reason + ': ' if reason else ''}{message}")
        self.reason, self.state, self.command_id = reason, state, command_id


class CommandTimedOut(CommandFailed):
    """A command did not end within its timeout (TIMED_OUT)."""


class CommandCancelled(CommandFailed):
    """A command was cancelled before it ended (CANCELLED)."""


class CommandLost(ClientError):
    """The stream of a command broke and the bridge no longer knows the command (it restarted)."""


class DecodeError(ClientError):
    """A message from the bridge is not valid protobuf for its type."""


_BY_CODE: dict[grpc.StatusCode, type[ClientError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.ABORTED: DeviceError,
    grpc.StatusCode.CANCELLED: Cancelled,
}
_GATE = re.compile(r" refused \[([^\]]+)\]")


def _gate_of(message: str) -> str | None:
    match = _GATE.search(message)
    return match.group(1) if match else None


def _refine(cls: type[ClientError], message: str) -> type[ClientError]:
    """The more specific class the bridge's message names (the bridge words these messages itself)."""
    lowered = message.lower()
    if cls is NotFound:
        if lowered.startswith("unknown device"):
            return DeviceNotFound
        if lowered.startswith("unknown command"):
            return CommandNotFound
    if cls is FailedPrecondition and (_gate_of(message) or "does not support" in lowered):
        return CommandRefused
    if cls is Unavailable:
        return DeviceUnavailable if lowered.startswith("device ") else BridgeUnavailable
    return cls


def from_rpc_error(exc: grpc.RpcError) -> ClientError:
    """The SDK exception for a failed call, with the bridge's own message."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    message = (exc.details() if hasattr(exc, "details") else None) or str(code)
    cls = _refine(_BY_CODE.get(code, ClientError), message)
    return cls(message, code)
