"""A subscriber process: `python -m bench.subscriber --target ADDR ...`, prints one RESULT line.

It subscribes K times (each on its own channel, so each is its own HTTP/2 connection), decodes every
TelemetryUpdate (protobuf parse plus a check that the columns add up) and counts the samples that
arrive inside the wall-clock window [start_at, start_at + duration). With --latency it also records,
per sample, receive time minus source timestamp (the bench driver stamps the hand-off to the bus;
both processes read the same machine clock). A --stall subscriber reads up to sync, then stops reading.
With --track-period P every selected signal must be a double that advances by P per sample (a
controller clock such as `ur-1/controller/timestamp`): the subscriber keeps the values it saw inside
the window per signal and reports how many of the expected steps between the first and the last one
arrived (`tracked`), so a sample lost anywhere on the way shows up as a missing step.
The same code talks to the bridge and to the raw baseline server (same method and messages).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
from google.protobuf.duration_pb2 import Duration

from bench.common import emit_result, percentiles
from linebridge.api import pb

METHOD = "/linebridge.v1.TelemetryService/Subscribe"
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 << 20)]


@dataclass
class Window:
    """The measurement window, in wall-clock seconds, and extra windows that only count samples."""

    start: float
    end: float
    extra: list[tuple[float, float]] = field(default_factory=list)

    @property
    def last(self) -> float:
        return max([self.end, *(end for _, end in self.extra)])


@dataclass
class Counts:
    """What one subscription saw inside the window."""

    samples: int = 0
    messages: int = 0
    dropped: int = 0
    total_received: int = 0
    extra: list[int] = field(default_factory=list)  # samples inside each extra window
    latencies: Counter = field(default_factory=Counter)  # latency in 10 us buckets -> samples
    paths: dict[int, str] = field(default_factory=dict)  # alias -> full path, from the catalog
    tracked: dict[int, list[float]] = field(default_factory=dict)  # alias -> values seen in the window

    def as_dict(self) -> dict:
        return {
            "samples": self.samples,
            "messages": self.messages,
            "dropped": self.dropped,
            "total_received": self.total_received,
        }


def check(batch: pb.telemetry.SampleBatch) -> int:
    """Sample count of a decoded batch; raises when its columns do not add up (a corrupt stream)."""
    n = len(batch.aliases)
    columns = (
        len(batch.double_values) + len(batch.int_values) + len(batch.bool_values) + len(batch.string_values)
    )
    if len(batch.timestamps) != n or columns != n:
        raise ValueError(f"corrupt batch: {n} aliases, {len(batch.timestamps)} timestamps, {columns} values")
    return n


def request(paths: list[str], max_latency_ms: float, max_size: int) -> pb.telemetry.SubscribeRequest:
    latency = Duration()
    latency.FromNanoseconds(int(max_latency_ms * 1e6))
    return pb.telemetry.SubscribeRequest(paths=paths, max_batch_latency=latency, max_batch_size=max_size)


async def consume(
    target: str,
    req: pb.telemetry.SubscribeRequest,
    window: Window,
    counts: Counts,
    latency: bool,
    stall: bool,
    track: bool = False,
) -> None:
    """One subscription until the window closes."""
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        call = channel.unary_stream(
            METHOD,
            request_serializer=pb.telemetry.SubscribeRequest.SerializeToString,
            response_deserializer=pb.telemetry.TelemetryUpdate.FromString,
        )(req)
        try:
            async for update in call:
                kind = update.WhichOneof("update")
                if kind == "batch":
                    n = check(update.batch)
                    counts.total_received += n
                    now = time.time()
                    if now >= window.last:
                        break
                    for i, (start, end) in enumerate(window.extra):
                        if start <= now < end:
                            counts.extra[i] += n
                    if now >= window.end:
                        continue
                    if now >= window.start:
                        counts.samples += n
                        counts.messages += 1
                        if latency:
                            record_latency(update.batch, counts.latencies)
                        if track:
                            record_values(update.batch, counts.tracked)
                elif kind == "catalog":
                    counts.paths.update((e.alias, e.path) for e in update.catalog.entries)
                elif kind == "dropped":
                    counts.dropped += update.dropped.samples
                elif kind == "sync" and stall:
                    await asyncio.sleep(max(0.0, window.end - time.time()))
                    break
        finally:
            call.cancel()


def record_latency(batch: pb.telemetry.SampleBatch, buckets: Counter) -> None:
    """Receive time minus source timestamp for every sample, in 10 us buckets."""
    now = time.time_ns()
    for stamp, count in Counter(batch.timestamps).items():
        buckets[(now - stamp) // 10_000] += count


def record_values(batch: pb.telemetry.SampleBatch, tracked: dict[int, list[float]]) -> None:
    """Keep every value of a batch of double signals, per alias."""
    if len(batch.double_values) != len(batch.aliases):
        raise ValueError("--track-period needs signals whose values are all doubles")
    for alias, value in zip(batch.aliases, batch.double_values, strict=True):
        tracked.setdefault(alias, []).append(value)


def steps(values: list[float], period: float) -> dict:
    """How many of the expected steps of a clock signal arrived (first to last value seen)."""
    unique = sorted(set(values))
    expected = round((unique[-1] - unique[0]) / period) + 1 if unique else 0
    backwards = sum(1 for a, b in itertools.pairwise(values) if b <= a)
    return {
        "received": len(values),
        "unique": len(unique),
        "expected": expected,
        "missing": expected - len(unique),
        "out_of_order_or_repeated": backwards,
    }


def summary(counts: list[Counts], window: Window, latency: bool, period: float = 0.0) -> dict:
    seconds = window.end - window.start
    result = {
        "seconds": seconds,
        "subs": [c.as_dict() for c in counts],
        "rates": [c.samples / seconds for c in counts],
        "extra": [
            {"start": start, "seconds": end - start, "rates": [c.extra[i] / (end - start) for c in counts]}
            for i, (start, end) in enumerate(window.extra)
        ],
    }
    if latency:
        merged: Counter = Counter()
        for c in counts:
            merged.update(c.latencies)
        p50, p99, p999 = percentiles(((k / 100.0, w) for k, w in merged.items()), (0.5, 0.99, 0.999))
        result["latency"] = {
            "p50_ms": p50,
            "p99_ms": p99,
            "p999_ms": p999,
            "samples": sum(merged.values()),
            "max_ms": max(merged) / 100.0 if merged else float("nan"),
        }
    if period:
        result["tracked"] = {
            c.paths.get(alias, str(alias)): steps(values, period)
            for c in counts
            for alias, values in c.tracked.items()
        }
    times = os.times()
    result["cpu_seconds"] = times.user + times.system
    return result


async def window_cpu(window: Window) -> float:
    """This process's CPU use inside the window, in percent of one core."""
    await asyncio.sleep(max(0.0, window.start - time.time()))
    t0 = os.times()
    await asyncio.sleep(max(0.0, window.end - time.time()))
    t1 = os.times()
    return 100.0 * ((t1.user + t1.system) - (t0.user + t0.system)) / (window.end - window.start)


async def run(args: argparse.Namespace) -> dict:
    window = Window(args.start_at, args.start_at + args.duration, [(a, a + d) for a, d in args.also or []])
    req = request(args.paths, args.max_latency_ms, args.max_size)
    counts = [Counts(extra=[0] * len(window.extra)) for _ in range(args.subs)]
    await asyncio.sleep(max(0.0, args.subscribe_at - time.time()))
    cpu = asyncio.create_task(window_cpu(window))
    await asyncio.gather(
        *(
            consume(args.target, req, window, c, args.latency, args.stall, bool(args.track_period))
            for c in counts
        )
    )
    result = summary(counts, window, args.latency, args.track_period)
    result["window_cpu_pct"] = await cpu
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.subscriber")
    parser.add_argument("--target", required=True)
    parser.add_argument("--paths", nargs="+", default=["*"])
    parser.add_argument("--subs", type=int, default=1, help="subscriptions in this process, one channel each")
    parser.add_argument("--start-at", type=float, required=True, help="window start, seconds since the epoch")
    parser.add_argument("--duration", type=float, required=True, help="window length, seconds")
    parser.add_argument(
        "--also",
        nargs=2,
        type=float,
        action="append",
        metavar=("START", "DURATION"),
        help="an extra window that only counts samples (repeatable)",
    )
    parser.add_argument(
        "--subscribe-at", type=float, default=0.0, help="subscribe at this epoch time, not at once"
    )
    parser.add_argument("--max-latency-ms", type=float, default=10.0, help="batching window asked for")
    parser.add_argument("--max-size", type=int, default=10_000, help="max samples per message asked for")
    parser.add_argument("--latency", action="store_true", help="record per-sample latency")
    parser.add_argument("--stall", action="store_true", help="stop reading after sync")
    parser.add_argument(
        "--track-period",
        type=float,
        default=0.0,
        help="check that every selected (double) clock signal advances by this step",
    )
    args = parser.parse_args(argv)
    emit_result(asyncio.run(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
