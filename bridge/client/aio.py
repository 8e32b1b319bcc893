"""A small async client for the Linebridge API, used by the CLI, the examples and the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

import grpc

from linebridge.api import pb
from linebridge.api.convert import value_to_pb

_COLUMNS = {1: "double_values", 2: "int_values", 3: "bool_values", 4: "string_values"}


@dataclass(frozen=True, slots=True)
class Sample:
    """One decoded sample."""

    path: str
    value: float | int | bool | str
    timestamp_ns: int
    quality: int


class CatalogDecoder:
    """Keeps a stream's catalog and turns columnar batches back into samples."""

    def __init__(self) -> None:
        self.entries: dict[int, pb.telemetry.CatalogEntry] = {}

    def apply(self, catalog: pb.telemetry.Catalog) -> None:
        for alias in catalog.removed_aliases:
            self.entries.pop(alias, None)
        for entry in catalog.entries:
            self.entries[entry.alias] = entry

    def decode(self, batch: pb.telemetry.SampleBatch) -> Iterator[Sample]:
        """Samples in order; raises KeyError for an alias the catalog never announced."""
        cursors = dict.fromkeys(_COLUMNS, 0)
        columns = {t: getattr(batch, name) for t, name in _COLUMNS.items()}
        qualities = batch.qualities
        for i, alias in enumerate(batch.aliases):
            entry = self.entries[alias]
            t = entry.value_type
            value = columns[t][cursors[t]]
            cursors[t] += 1
            yield Sample(entry.path, value, batch.timestamps[i], qualities[i] if qualities else 1)


value_message = value_to_pb  # one conversion for the bridge and its clients


def value_of(message: pb.common.Value) -> float | int | bool | str | None:
    kind = message.WhichOneof("kind")
    return None if kind is None else getattr(message, kind)


def tls_credentials(
    ca: bytes | None = None, cert: bytes | None = None, key: bytes | None = None, token: str | None = None
) -> grpc.ChannelCredentials:
    """TLS to a bridge: trust `ca` (PEM; None = the system's roots), present a client certificate
    (`cert` + `key`, for mutual TLS), and send a bearer token with every call."""
    if bool(cert) != bool(key):
        raise ValueError("a client certificate needs both the certificate and its key")
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
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


class Client:
    """Async stubs for every Linebridge service over one channel.

    Without `credentials` the channel is plaintext (a loopback bridge without TLS); `token` is then
    sent as metadata. With TLS, pass `tls_credentials(ca, cert, key, token)`.
    """

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.target = target
        if credentials is not None:
            if token:
                credentials = grpc.composite_channel_credentials(
                    credentials, grpc.access_token_call_credentials(token)
                )
            self.channel = grpc.aio.secure_channel(target, credentials)
        else:
            interceptors = [_TokenUnary(token), _TokenStream(token)] if token else None
            self.channel = grpc.aio.insecure_channel(target, interceptors=interceptors)
        self.devices = pb.device_grpc.DeviceServiceStub(self.channel)
        self.telemetry = pb.telemetry_grpc.TelemetryServiceStub(self.channel)
        self.commands = pb.command_grpc.CommandServiceStub(self.channel)
        self.bridge = pb.bridge_grpc.BridgeServiceStub(self.channel)
        self.transport = pb.transport_grpc.TransportServiceStub(self.channel)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    async def list_devices(self) -> list[pb.device.Device]:
        return list((await self.devices.ListDevices(pb.device.ListDevicesRequest())).devices)

    async def samples(self, paths: Sequence[str], **options: object) -> AsyncIterator[Sample | str]:
        """Decoded samples of a subscription; also yields "sync", "heartbeat" and "dropped:N" markers."""
        decoder = CatalogDecoder()
        request = pb.telemetry.SubscribeRequest(paths=list(paths), **options)  # type: ignore[arg-type]
        async for update in self.telemetry.Subscribe(request):
            kind = update.WhichOneof("update")
            if kind == "catalog":
                decoder.apply(update.catalog)
            elif kind == "batch":
                for sample in decoder.decode(update.batch):
                    yield sample
            elif kind == "dropped":
                yield f"dropped:{update.dropped.samples}"
            else:
                yield kind

    async def execute(self, request: pb.command.ExecuteRequest) -> list[pb.command.CommandEvent]:
        """Run a command and return all its events (the last one is final)."""
        return [event async for event in self.commands.Execute(request)]
