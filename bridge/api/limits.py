"""Per-client limits of the gRPC API: open streams, paths per request, and the server's HTTP/2 options."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from linebridge.errors import ResourceExhausted
from linebridge.security.config import GrpcLimits

# Long-lived streams that each hold a queue in the bridge; counted per client.
STREAM_METHODS = frozenset(
    {"/linebridge.v1.TelemetryService/Subscribe", "/linebridge.v1.DeviceService/WatchDevices"}
)
# Requests whose `paths` each compile to a glob and are matched against every device.
PATH_METHODS = frozenset(
    {"/linebridge.v1.TelemetryService/Subscribe", "/linebridge.v1.TelemetryService/Read"}
)


def server_options(limits: GrpcLimits, max_receive_bytes: int) -> list[tuple[str, Any]]:
    """Channel arguments of the server: message size, streams per connection, keepalive enforcement."""
    return [
        ("grpc.max_receive_message_length", max_receive_bytes),
        ("grpc.max_concurrent_streams", limits.max_concurrent_streams),
        ("grpc.keepalive_time_ms", int(limits.keepalive_time_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", int(limits.keepalive_timeout_seconds * 1000)),
        # Clients may keep idle connections alive with pings, but not faster than this (gRPC A8).
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", int(limits.min_ping_interval_seconds * 1000)),
        ("grpc.http2.max_ping_strikes", limits.max_ping_strikes),
        ("grpc.so_reuseport", 0),
    ]


class StreamLimiter:
    """Counts open streams per client; one over the limit is RESOURCE_EXHAUSTED, others are unaffected."""

    def __init__(self, limits: GrpcLimits) -> None:
        self.limits = limits
        self.open: Counter[str] = Counter()

    @contextmanager
    def hold(self, client: str) -> Iterator[None]:
        """A slot for `client` (an identity, or the connection of an anonymous caller) while the stream lasts."""
        limit = self.limits.max_subscriptions_per_client
        if self.open[client] >= limit:
            raise ResourceExhausted(
                f"{client} already has {limit} open subscription streams (the limit per client)"
            )
        with self._held(client):
            yield

    @contextmanager
    def hold_anonymous(self, peer: str) -> Iterator[None]:
        """Slots of an unauthenticated caller: per connection and per peer address (all its connections)."""
        address = "address:" + peer.rpartition(":")[0]
        limit = self.limits.max_subscriptions_per_address
        if self.open[address] >= limit:
            raise ResourceExhausted(
                f"{peer.rpartition(':')[0]} already has {limit} open subscription streams of unauthenticated "
                "callers (grpc.limits.max_subscriptions_per_address)"
            )
        with self._held(address), self.hold(peer):
            yield

    @contextmanager
    def _held(self, client: str) -> Iterator[None]:
        self.open[client] += 1
        try:
            yield
        finally:
            self.open[client] -= 1
            if not self.open[client]:
                del self.open[client]

    def check_paths(self, request: Any) -> None:
        """ResourceExhausted when a request names more paths than a client may."""
        count, limit = len(request.paths), self.limits.max_paths_per_subscription
        if count > limit:
            raise ResourceExhausted(f"{count} paths in one request; at most {limit} (use globs)")
