"""Channels to a bridge: TLS credentials, the bearer token, retries with backoff and error mapping."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import grpc

from linebridge.client import errors

T = TypeVar("T")
Pem = bytes | str | Path | None
# Calls that failed because the bridge could not be reached are retried; everything else is an answer.
RETRYABLE = (errors.BridgeUnavailable,)


def read_pem(value: Pem, what: str) -> bytes | None:
    """PEM bytes from bytes, PEM text, or a path to a PEM file."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    try:
        return Path(value).read_bytes()
    except OSError as exc:
        raise errors.ClientError(f"cannot read the {what} file {value}: {exc.strerror}") from None


def tls_credentials(
    ca: Pem = None, cert: Pem = None, key: Pem = None, token: str | None = None
) -> grpc.ChannelCredentials:
    """TLS to a bridge: trust `ca` (None = the system's roots), present `cert` + `key` (mutual TLS),
    and send a bearer token with every call."""
    ca_pem, cert_pem, key_pem = read_pem(ca, "CA"), read_pem(cert, "certificate"), read_pem(key, "key")
    if bool(cert_pem) != bool(key_pem):
        raise ValueError("a client certificate needs both the certificate and its key")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem
    )
    if token:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    return credentials


class _BearerToken:
    """Adds `authorization: Bearer <token>` to calls on a plaintext channel (gRPC sends call
    credentials only over TLS; a loopback bridge with a tokens file and no TLS still needs them)."""

    def __init__(self, token: str) -> None:
        self.header = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), self.header)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# Separate classes: a channel files each interceptor under the first call kind it implements only.
class _TokenUnary(_BearerToken, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(details), request)


class _TokenStream(_BearerToken, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(details), request)


class _TokenStreamStream(_BearerToken, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._details(details), request_iterator)


# Reconnect quickly after a bridge restart (gRPC's default backoff grows to 120 s).
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


def open_channel(
    target: str, credentials: grpc.ChannelCredentials | None = None, token: str | None = None
) -> grpc.aio.Channel:
    """A TLS channel when `credentials` is given (token as call credentials), plaintext otherwise."""
    if credentials is not None:
        if token:
            credentials = grpc.composite_channel_credentials(
                credentials, grpc.access_token_call_credentials(token)
            )
        return grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
    interceptors = [_TokenUnary(token), _TokenStream(token), _TokenStreamStream(token)] if token else None
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter between reconnect attempts."""

    initial: float = 0.1
    maximum: float = 5.0
    factor: float = 2.0

    def delays(self) -> Callable[[], float]:
        """A function giving the next delay on each call."""
        current = [self.initial]

        def step() -> float:
            delay = current[0]
            current[0] = min(self.maximum, delay * self.factor)
            return delay * random.uniform(0.8, 1.2)

        return step


async def call(make: Callable[[], Awaitable[T]], retry_for: float = 0.0, backoff: Backoff | None = None) -> T:
    """Await one call, mapping gRPC errors; while the bridge is unreachable, retry for `retry_for` s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + retry_for
    next_delay = (backoff or Backoff()).delays()
    while True:
        try:
            return await make()
        except grpc.RpcError as exc:
            error = errors.from_rpc_error(exc)
        if not isinstance(error, RETRYABLE) or loop.time() >= end:
            raise error
        await asyncio.sleep(min(next_delay(), max(0.0, end - loop.time())))


class Caller(Protocol):
    """What a Command, a Jog and a Subscription need of their client (AsyncClient is one)."""

    channel: grpc.aio.Channel
    stubs: Any
    backoff: Backoff
    reconnect_seconds: float
    _subscriptions: set[Any]

    async def _unary(
        self, method: Callable[..., Awaitable[T]], request: Any, timeout: float | None = None
    ) -> T: ...
