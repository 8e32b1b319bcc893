"""The one place where domain errors become gRPC status codes."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import grpc

from linebridge import errors

log = logging.getLogger(__name__)

STATUS: dict[type[errors.LinebridgeError], grpc.StatusCode] = {
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.DeviceError: grpc.StatusCode.ABORTED,
    errors.ConfigError: grpc.StatusCode.INVALID_ARGUMENT,
}


def status_of(exc: errors.LinebridgeError) -> grpc.StatusCode:
    """The gRPC status code of a domain error (its nearest mapped base class; INTERNAL if none)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return grpc.StatusCode.INTERNAL


def grpc_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a servicer method (coroutine or async generator): domain errors abort with their code."""
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                async for item in method(self, request, context):
                    yield item
            except errors.LinebridgeError as exc:
                await context.abort(status_of(exc), str(exc))

        return stream

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except errors.LinebridgeError as exc:
            await context.abort(status_of(exc), str(exc))

    return unary
