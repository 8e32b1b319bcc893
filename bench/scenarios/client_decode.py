"""client_decode: the client SDK's decode of recorded Subscribe messages into numpy columns, samples/s.

Messages are recorded from a bench bridge (bench driver, 100 double signals x 100 rows per batch, so
10,000 samples per message) as the bytes gRPC delivers, and the bridge is stopped. Then, in this
process, 10 M samples (1 M with --quick) are decoded three ways, each five times, interleaved:
`value` is the SDK's path (linebridge.client: split_update + decode_batch + Batch.decode with the
stream's catalog); `baseline` is protobuf's own `TelemetryUpdate.FromString` of the same bytes (no
conversion to anything); `protobuf_numpy` is protobuf's parse followed by numpy arrays of its
repeated containers, the alternative to decoding the packed fields by hand. Best round of each.
"""

from __future__ import annotations

import time

import grpc
import numpy as np

from bench.common import say
from bench.harness import Context, bench_device, start_bridge
from bench.procs import Processes
from linebridge.api import pb
from linebridge.client._wire import decode_batch, split_update
from linebridge.client.batch import Batch
from linebridge.client.catalog import Catalog

NAME = "client_decode"
TARGET = ">= 20,000,000 samples/s and >= 0.5 x protobuf ParseFromString"
SIGNALS, ROWS = 100, 100
RECORD_SAMPLES = 1_000_000
ROUNDS = 5  # interleaved; the best of each counts (the machine is shared)


async def record(endpoint: str, samples: int) -> tuple[list[bytes], list[bytes]]:
    """(catalog messages, batch messages) of one Subscribe stream, as bytes, until `samples` arrived."""
    catalogs: list[bytes] = []
    batches: list[bytes] = []
    seen = 0
    async with grpc.aio.insecure_channel(endpoint) as channel:
        subscribe = channel.unary_stream(
            "/linebridge.v1.TelemetryService/Subscribe",
            request_serializer=pb.telemetry.SubscribeRequest.SerializeToString,
        )
        call = subscribe(pb.telemetry.SubscribeRequest(paths=["bench-1/*"], max_batch_size=SIGNALS * ROWS))
        async for data in call:
            kind, _, _ = split_update(data)
            if kind == "catalog":
                catalogs.append(data)
            elif kind == "batch":
                batches.append(data)
                seen += len(pb.telemetry.TelemetryUpdate.FromString(data).batch.aliases)
                if seen >= samples:
                    call.cancel()
                    break
    return catalogs, batches


def sdk_decode(messages: list[bytes], catalog: Catalog) -> int:
    """The SDK's path; returns the samples decoded."""
    view, total = catalog.view, 0
    for data in messages:
        _, start, end = split_update(data)
        total += len(Batch.decode(decode_batch(data, start, end), view))
    return total


def protobuf_parse(messages: list[bytes], catalog: Catalog) -> int:
    """protobuf's ParseFromString of each message, nothing more."""
    total = 0
    for data in messages:
        total += len(pb.telemetry.TelemetryUpdate.FromString(data).batch.aliases)
    return total


def protobuf_numpy(messages: list[bytes], catalog: Catalog) -> int:
    """protobuf's parse, then numpy arrays of the repeated containers."""
    total = 0
    for data in messages:
        batch = pb.telemetry.TelemetryUpdate.FromString(data).batch
        aliases = np.array(batch.aliases, dtype=np.uint32)
        np.array(batch.timestamps, dtype=np.int64)
        np.array(batch.double_values, dtype=np.float64)
        np.array(batch.int_values, dtype=np.int64)
        total += aliases.size
    return total


def rate(decode, messages: list[bytes], catalog: Catalog) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    samples = decode(messages, catalog)
    return samples / (time.perf_counter() - started)


async def run(ctx: Context) -> dict:
    target_samples = 1_000_000 if ctx.quick else 10_000_000
    async with Processes() as procs:
        bridge = await start_bridge(
            procs, "decode-bridge", [bench_device(signals=SIGNALS, rows_per_batch=ROWS)]
        )
        catalogs, recorded = await record(bridge.endpoint, min(RECORD_SAMPLES, target_samples))
    catalog = Catalog()
    for data in catalogs:
        catalog.apply(pb.telemetry.TelemetryUpdate.FromString(data).catalog)
    per_message = sdk_decode(recorded, catalog) / len(recorded)
    messages = (recorded * (int(target_samples / per_message / len(recorded)) + 1))[
        : int(target_samples / per_message + 0.5)
    ]
    say(
        f"client_decode: {len(recorded)} messages recorded, decoding {len(messages)} ({per_message:.0f} samples each)"
    )
    rounds: dict[str, list[float]] = {"sdk": [], "parse": [], "numpy": []}
    for _ in range(ROUNDS):
        rounds["sdk"].append(rate(sdk_decode, messages, catalog))
        rounds["parse"].append(rate(protobuf_parse, messages, catalog))
        rounds["numpy"].append(rate(protobuf_numpy, messages, catalog))
    value, baseline, via_numpy = max(rounds["sdk"]), max(rounds["parse"]), max(rounds["numpy"])
    ratio = value / baseline
    return {
        "value": value,
        "unit": "samples/s",
        "baseline": baseline,
        "ratio": ratio,
        "target": TARGET,
        "met": value >= 20_000_000 and ratio >= 0.5,
        "protobuf_numpy": via_numpy,
        "protobuf_numpy_ratio": via_numpy / baseline,
        "samples": int(per_message * len(messages)),
        "messages": len(messages),
        "recorded_messages": len(recorded),
        "samples_per_message": per_message,
        "rounds": {k: [round(v) for v in vs] for k, vs in rounds.items()},
    }
