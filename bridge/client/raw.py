"""`RawClient`: the generated stubs over one channel, for tools and tests that speak protobuf.

Applications use `AsyncClient` / `Client`; this is the layer under them, with no reconnects and no
conversion: every call takes and returns the messages of protos/linebridge/v1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence

import grpc

from linebridge.api import pb
from linebridge.client._channel import open_channel
from linebridge.client._values import value_message, value_of
from linebridge.client.aio import Stubs
from linebridge.client.batch import Sample

__all__ = ["CatalogDecoder", "RawClient", "value_message", "value_of"]

_COLUMNS = {1: "double_values", 2: "int_values", 3: "bool_values", 4: "string_values"}


class CatalogDecoder:
    """Keeps a stream's catalog and turns protobuf batches back into samples, one object each."""

    def __init__(self) -> None:
        self.entries: dict[int, pb.telemetry.CatalogEntry] = {}

    def apply(self, catalog: pb.telemetry.Catalog) -> None:
        """Apply a Catalog message."""
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


class RawClient(Stubs):
    """Stubs of every service (`devices`, `telemetry`, `commands`, `bridge`) over one channel; plaintext
    without `credentials` (then `token` travels as metadata), TLS with `tls_credentials(...)`."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.target = target
        self.channel = open_channel(target, credentials, token)
        super().__init__(self.channel)

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close()

    async def list_devices(self) -> list[pb.device.Device]:
        """Every device, as protobuf messages."""
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
