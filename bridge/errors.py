"""Domain errors of Linebridge; bridge/api/errors.py maps each to one gRPC status code."""

from __future__ import annotations


def describe(exc: BaseException, timeout: float | None = None) -> str:
    """What happened, never empty: the error's text, or "no response within N s" for a bare timeout."""
    text = str(exc)
    if text:
        return text
    if isinstance(exc, TimeoutError):
        return f"no response within {timeout:g} s" if timeout else "no response in time"
    return type(exc).__name__


class LinebridgeError(Exception):
    """Base of every error the bridge reports to a caller."""

    reason = "ERROR"


class NotFound(LinebridgeError):
    """An unknown device, signal, method or command."""

    reason = "NOT_FOUND"


class InvalidArgument(LinebridgeError):
    """A malformed path glob, a value of the wrong type, a bad request field."""

    reason = "INVALID_ARGUMENT"


class FailedPrecondition(LinebridgeError):
    """The device is not in a state to do this (interlock, not ready, unsupported command)."""

    reason = "FAILED_PRECONDITION"


class Unsupported(FailedPrecondition):
    """The device does not offer this command kind or method."""

    reason = "UNSUPPORTED_COMMAND"


class Unavailable(LinebridgeError):
    """The device is offline or its connection broke."""

    reason = "DEVICE_OFFLINE"


class IdentityChanged(Unavailable):
    """The device at the endpoint is not the one approved (another ApplicationUri or serial number)."""

    reason = "IDENTITY_CHANGED"


class LinkError(Unavailable):
    """The uplink's connection to its MQTT broker could not be made, or it is gone."""

    reason = "UPLINK_UNAVAILABLE"


class PermissionDenied(LinebridgeError):
    """The caller's role does not allow this."""

    reason = "PERMISSION_DENIED"


class ResourceExhausted(LinebridgeError):
    """A limit was hit (queue full, too many subscriptions)."""

    reason = "RESOURCE_EXHAUSTED"


class RateLimited(ResourceExhausted):
    """A caller or a device went over its command rate."""

    reason = "RATE_LIMITED"


class AuditFailure(ResourceExhausted):
    """The audit log cannot take a record; the command that needed it is refused."""

    reason = "AUDIT_UNAVAILABLE"


class AuditFull(AuditFailure):
    """The record does not fit in the audit budget (audit.max_total_bytes)."""


class DeadlineExceeded(LinebridgeError):
    """The operation did not finish in time."""

    reason = "DEADLINE_EXCEEDED"


class DeviceError(LinebridgeError):
    """The device answered, but refused or failed the operation (bad status, exception code)."""

    reason = "DEVICE_ERROR"


class ConfigError(LinebridgeError):
    """The configuration is invalid; the bridge does not start."""

    reason = "CONFIG_ERROR"
