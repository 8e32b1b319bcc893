"""The raw baseline: a bare grpc.aio server with no bridge behind it. `python -m bench.raw_server`.

It serves the same method names and messages as the bridge, so the same client measures both:
* `Subscribe` streams pre-built TelemetryUpdate bytes (catalog, sync, then one batch message over and
  over), or with --rate-hz produces stamped batches on a timer and sends what piled up once per
  batching window (the latency baseline);
* `/bench.Raw/Execute` is a unary call that decodes an ExecuteRequest and answers a CommandEvent;
* `grpc.health.v1.Health` answers SERVING (the startup baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import grpc
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.common import emit_ready
from linebridge.api import pb
from linebridge.cli.runner import stop_event

EXECUTE = "/bench.Raw/Execute"
_SUCCEEDED = 3  # COMMAND_STATE_SUCCEEDED


def catalog_bytes(signals: int) -> bytes:
    entries = [
        pb.telemetry.CatalogEntry(alias=i + 1, path=f"raw/values/{i}", value_type=1, unit="1")
        for i in range(signals)
    ]
    return pb.telemetry.TelemetryUpdate(catalog=pb.telemetry.Catalog(entries=entries)).SerializeToString()


def batch_message(
    signals: int, samples: int, stamps: list[int] | None = None
) -> pb.telemetry.TelemetryUpdate:
    """A TelemetryUpdate{batch} of `samples` doubles over `signals` aliases (rows of signals)."""
    now = time.time_ns()
    batch = pb.telemetry.SampleBatch(
        aliases=[i % signals + 1 for i in range(samples)],
        timestamps=stamps if stamps is not None else [now + (i // signals) * 1000 for i in range(samples)],
        double_values=[0.001 * i for i in range(samples)],
    )
    return pb.telemetry.TelemetryUpdate(batch=batch)


class RawTelemetry:
    """Subscribe handlers: pre-built batches as fast as the transport takes them, or paced + windowed."""

    def __init__(self, signals: int, samples: int, rate_hz: float) -> None:
        self.signals, self.samples, self.rate_hz = signals, samples, rate_hz
        self.catalog = catalog_bytes(signals)
        self.sync = pb.telemetry.TelemetryUpdate(sync=pb.telemetry.Sync()).SerializeToString()
        self.payload = batch_message(signals, samples).SerializeToString()
        self.pending: list[list[int]] = []  # per paced subscriber: stamps of batches produced, not sent
        self.wakers: list[asyncio.Event] = []

    async def subscribe(self, request: pb.telemetry.SubscribeRequest, context):  # noqa: ANN001
        yield self.catalog
        yield self.sync
        if not self.rate_hz:
            payload = self.payload
            while True:
                yield payload
        window = request.max_batch_latency.ToNanoseconds() / 1e9 or 0.01
        stamps: list[int] = []
        wake = asyncio.Event()
        self.pending.append(stamps)
        self.wakers.append(wake)
        try:
            while True:
                await wake.wait()
                await asyncio.sleep(window)  # hold for the batching window, then send what piled up
                wake.clear()
                taken = stamps.copy()
                stamps.clear()
                rows = [s for s in taken for _ in range(self.samples)]
                yield batch_message(self.signals, len(rows), rows).SerializeToString()
        finally:
            self.pending.remove(stamps)
            self.wakers.remove(wake)

    async def produce(self) -> None:
        """One batch stamp per tick for every paced subscriber (same schedule as the bench driver)."""
        period = 1.0 / self.rate_hz
        next_at = time.monotonic()
        while True:
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            now = time.time_ns()
            for stamps, wake in zip(self.pending, self.wakers, strict=True):
                stamps.append(now)
                wake.set()


async def execute(request: pb.command.ExecuteRequest, context) -> pb.command.CommandEvent:  # noqa: ANN001
    event = pb.command.CommandEvent(command_id=request.idempotency_key or "raw", state=_SUCCEEDED)
    event.time.FromNanoseconds(time.time_ns())
    return event


def build(telemetry: RawTelemetry) -> tuple[grpc.aio.Server, health_aio.HealthServicer]:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "linebridge.v1.TelemetryService",
                {
                    "Subscribe": grpc.unary_stream_rpc_method_handler(
                        telemetry.subscribe,
                        request_deserializer=pb.telemetry.SubscribeRequest.FromString,
                        response_serializer=lambda b: b,
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "bench.Raw",
                {
                    "Execute": grpc.unary_unary_rpc_method_handler(
                        execute,
                        request_deserializer=pb.command.ExecuteRequest.FromString,
                        response_serializer=pb.command.CommandEvent.SerializeToString,
                    )
                },
            ),
        )
    )
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    return server, health


async def serve(args: argparse.Namespace) -> None:
    stop = stop_event()
    telemetry = RawTelemetry(args.signals, args.batch_samples, args.rate_hz)
    server, health = build(telemetry)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    producer = asyncio.create_task(telemetry.produce()) if args.rate_hz else None
    emit_ready(f"127.0.0.1:{port}")
    try:
        await stop.wait()
    finally:
        if producer is not None:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        await server.stop(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_server")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--signals", type=int, default=100, help="aliases in the catalog")
    parser.add_argument(
        "--batch-samples",
        type=int,
        default=10_000,
        help="samples per streamed message (per produced batch with --rate-hz)",
    )
    parser.add_argument(
        "--rate-hz", type=float, default=0.0, help="produce batches on a timer (latency baseline)"
    )
    asyncio.run(serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
