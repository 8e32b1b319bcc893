"""Helpers for the tests of the README's promises: raw gRPC stubs on a channel of their own, so what is
checked is the API as any client sees it, independent of the project's SDK."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator

import grpc

from linebridge.api import pb

COLUMNS = {1: "double_values", 2: "int_values", 3: "bool_values", 4: "string_values"}


class Stubs:
    """One insecure loopback channel and the three service stubs."""

    def __init__(self, address: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.telemetry = pb.telemetry_grpc.TelemetryServiceStub(self.channel)
        self.commands = pb.command_grpc.CommandServiceStub(self.channel)
        self.bridge = pb.bridge_grpc.BridgeServiceStub(self.channel)
        self.metadata = metadata

    async def close(self) -> None:
        await self.channel.close()


class Decoded:
    """What a Subscribe stream carried, decoded by its catalog: values and source times per path."""

    def __init__(self) -> None:
        self.types: dict[int, tuple[str, int]] = {}  # alias -> (path, value type)
        self.values: dict[str, list[object]] = defaultdict(list)
        self.stamps: dict[str, list[int]] = defaultdict(list)
        self.batch_sizes: list[int] = []
        self.kinds: list[str] = []
        self.dropped: list[pb.telemetry.Dropped] = []

    def add(self, update: pb.telemetry.TelemetryUpdate) -> None:
        kind = update.WhichOneof("update")
        self.kinds.append(kind)
        if kind == "catalog":
            for entry in update.catalog.entries:
                self.types[entry.alias] = (entry.path, entry.value_type)
        elif kind == "batch":
            self._batch(update.batch)
        elif kind == "dropped":
            self.dropped.append(update.dropped)

    def _batch(self, batch: pb.telemetry.SampleBatch) -> None:
        self.batch_sizes.append(len(batch.aliases))
        columns = {t: iter(getattr(batch, name)) for t, name in COLUMNS.items()}
        for alias, stamp in zip(batch.aliases, batch.timestamps, strict=True):
            path, value_type = self.types[alias]
            self.values[path].append(next(columns[value_type]))
            self.stamps[path].append(stamp)


async def collect(
    stream: AsyncIterator[pb.telemetry.TelemetryUpdate],
    until,
    timeout: float = 15.0,
    decoded: Decoded | None = None,
) -> Decoded:
    """Decode updates until `until(decoded)` holds (fails after `timeout` seconds). Pass the `decoded` of
    an earlier call on the same stream to go on with its catalog."""
    decoded = decoded or Decoded()
    async with asyncio.timeout(timeout):
        async for update in stream:
            decoded.add(update)
            if until(decoded):
                return decoded
    raise AssertionError(f"the stream ended first; it carried {decoded.kinds[-5:]}")


def seconds(value: float):
    """A protobuf Duration."""
    from google.protobuf.duration_pb2 import Duration

    duration = Duration()
    duration.FromNanoseconds(round(value * 1e9))
    return duration
