"""The server interceptor: identify the caller, check its role and limits, then run the RPC as it.

A grpc.aio interceptor sees only the method name and metadata, not the TLS peer, so it wraps the
handler: the wrapper runs inside the call with its ServicerContext (auth_context(), peer()), and
sets the caller's Identity in a contextvar that the servicers read with `current_identity()`.
gRPC runs every RPC in a context of its own, so the value never leaks into another call.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from contextlib import ExitStack, aclosing
from typing import Any

import grpc

from linebridge.api.auth import OPEN_METHODS, Authenticator, AuthFailure, check_role, set_identity, short_name
from linebridge.api.errors import status_of
from linebridge.api.limits import PATH_METHODS, STREAM_METHODS, StreamLimiter
from linebridge.errors import LinebridgeError
from linebridge.model import Identity

log = logging.getLogger(__name__)

# (identity or None when unknown, method, status code, reason, peer): for the audit log.
DeniedHook = Callable[[Identity | None, str, grpc.StatusCode, str, str], None]


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates and authorises every call except the open health methods."""

    def __init__(
        self, authenticator: Authenticator, limiter: StreamLimiter, on_denied: DeniedHook | None = None
    ) -> None:
        self.authenticator = authenticator
        self.limiter = limiter
        self.on_denied = on_denied

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        """Wrap the RPC's handler so it runs as the identified caller, after the role and limit checks."""
        handler = await continuation(details)
        if handler is None or details.method in OPEN_METHODS:
            return handler
        return self._wrap(handler, details.method)

    def _wrap(self, handler: Any, method: str) -> Any:
        for kind, factory in (
            ("unary_unary", grpc.unary_unary_rpc_method_handler),
            ("unary_stream", grpc.unary_stream_rpc_method_handler),
            ("stream_unary", grpc.stream_unary_rpc_method_handler),
            ("stream_stream", grpc.stream_stream_rpc_method_handler),
        ):
            inner = getattr(handler, kind)
            if inner is not None:
                wrapped = (
                    self._streaming(inner, method)
                    if inspect.isasyncgenfunction(inner)
                    else self._unary(inner, method)
                )
                return factory(
                    wrapped,
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        return handler

    def _unary(self, inner: Callable[..., Awaitable[Any]], method: str) -> Callable[..., Awaitable[Any]]:
        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with ExitStack() as stack:
                await self._enter(method, request, context, stack)
                return await inner(request, context)

        return behavior

    def _streaming(self, inner: Callable[..., Any], method: str) -> Callable[..., Any]:
        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with ExitStack() as stack:  # holds the stream's slot in the limiter until the stream ends
                await self._enter(method, request, context, stack)
                # aclosing: when the client goes away the servicer's `finally` (subscription.close()) runs now
                async with aclosing(inner(request, context)) as responses:
                    async for item in responses:
                        yield item

        return behavior

    async def _enter(
        self, method: str, request: Any, context: grpc.aio.ServicerContext, stack: ExitStack
    ) -> None:
        """Admit the call or abort it: UNAUTHENTICATED, PERMISSION_DENIED or RESOURCE_EXHAUSTED."""
        identity: Identity | None = None
        try:
            identity = self.authenticator.identify(
                context.auth_context(), context.invocation_metadata(), context.peer() or ""
            )
            check_role(identity, method)
            if method in PATH_METHODS:
                self.limiter.check_paths(request)
            if method in STREAM_METHODS:
                # Anonymous callers all look alike: count them per connection and per peer address.
                if identity.name in ("local", "anonymous"):
                    stack.enter_context(self.limiter.hold_anonymous(identity.peer))
                else:
                    stack.enter_context(self.limiter.hold(identity.name))
        except AuthFailure as exc:
            self._denied(identity, method, exc.code, exc.reason, context)
            await context.abort(exc.code, exc.reason)
        except LinebridgeError as exc:
            self._denied(identity, method, status_of(exc), str(exc), context)
            await context.abort(status_of(exc), str(exc))
        set_identity(identity)

    def _denied(
        self,
        identity: Identity | None,
        method: str,
        code: grpc.StatusCode,
        reason: str,
        context: grpc.aio.ServicerContext,
    ) -> None:
        peer = context.peer() or ""
        log.info(
            "denied %s from %s (%s): %s %s",
            short_name(method),
            identity.name if identity else peer,
            peer,
            code.name,
            reason,
        )
        if self.on_denied is not None:
            try:
                self.on_denied(identity, method, code, reason, peer)
            except Exception:  # the hook (audit) reports its own failures; the call stays denied
                log.exception("denied-call hook failed")
