"""The raw MQTT baseline of the uplink scenarios: a bare client publishing ready-made DDATA payloads.

`python -m bench.mqtt_baseline --port P --signals N --rows R --max-payload B ...` first encodes the
bench driver's batches (N double signals x R rows) into full Sparkplug DDATA payloads with the
uplink's own encoder, so every payload has the size and sample count of the bridge's full ones
(trailer included). Then it publishes them at QoS 1 with the bridge's MQTT client
(bridge/uplink/mqtt.py) and, unless `--rate 0`, the same publish-rate token bucket and in-flight cap
the uplink uses. No bus, report-by-exception, encoding or outbox in the loop.

With `--start-at T --duration S` it publishes over and over and counts the payloads whose PUBACK
arrives inside the window (`uplink_throughput`). With `--messages M` it connects, publishes M
payloads and reports the seconds from the start of the connect to the last PUBACK (`uplink_replay`,
with `--historical`: every metric flagged historical, as the outbox stores data from an outage).
Prints one RESULT line.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from functools import partial

from bench.common import emit_result, window_cpu
from linebridge.model import SampleBatch, ValueType
from linebridge.uplink.encoder import SparkplugEncoder, now_ms, trailer
from linebridge.uplink.mqtt import MqttClient
from linebridge.uplink.publisher import RateLimiter

TOPIC = "spBv1.0/bench/DDATA/bare/bench-1"


def payloads(
    signals: int, rows: int, max_payload: int, historical: bool, count: int = 16
) -> list[tuple[bytes, int]]:
    """`count` full DDATA payloads of the bench driver's data, each with its sample count.

    Counts differ by a few samples: the encoder fills by the widest metric of a batch (aliases from
    128 up take a two-byte varint), as it does in the bridge.
    """
    encoder = SparkplugEncoder(max_payload)
    for alias in range(signals):
        encoder.define(alias, alias + 1, ValueType.DOUBLE)
    n = signals * rows
    stamp = time.time_ns()
    sealed = []
    k = 0
    while len(sealed) < count:
        values = [math.sin(0.001 * (k * n + i)) for i in range(n)]
        batch = SampleBatch(
            "bench-1", list(range(signals)) * rows, values, [stamp] * n, value_type=ValueType.DOUBLE
        )
        sealed += encoder.add(batch, historical=historical)
        k += 1
    return [(s.body + trailer(now_ms(), i % 256), s.samples) for i, s in enumerate(sealed[:count])]


class Sender:
    """QoS 1 publishes under the uplink's rate limit and in-flight cap; counts PUBACKs."""

    def __init__(self, client: MqttClient, rate: float, inflight: int) -> None:
        self.client, self.inflight = client, inflight
        self.limiter = RateLimiter(rate) if rate else None
        self.acked = 0
        self.acked_in_window = 0
        self.samples = 0
        self.samples_in_window = 0
        self.window = (0.0, 0.0)
        self.last_ack = 0.0
        self._ack = asyncio.Event()

    async def send(self, body: bytes, samples: int) -> None:
        """Wait for room and a token, publish, let the socket drain."""
        while self.client.inflight >= self.inflight:
            self._ack.clear()
            await self._ack.wait()
        if self.limiter is not None:
            await self.limiter.acquire()
        future = self.client.publish(TOPIC, body, qos=1)
        assert future is not None
        future.add_done_callback(partial(self._on_ack, samples))
        await self.client.drain()

    def _on_ack(self, samples: int, future: asyncio.Future) -> None:
        self._ack.set()
        if future.cancelled() or future.exception() is not None:
            return
        self.acked += 1
        self.samples += samples
        self.last_ack = time.time()
        if self.window[0] <= self.last_ack < self.window[1]:
            self.acked_in_window += 1
            self.samples_in_window += samples

    async def all_acked(self) -> None:
        while self.client.inflight:
            self._ack.clear()
            await self._ack.wait()


async def run(args: argparse.Namespace) -> dict:
    bodies = payloads(args.signals, args.rows, args.max_payload, args.historical)
    client = MqttClient("127.0.0.1", args.port, f"bench-bare-{os.getpid()}", keepalive=30)
    started = time.time()
    await client.connect()
    sender = Sender(client, args.rate, args.inflight)
    result: dict[str, object] = {
        "payload_bytes": sum(len(b) for b, _ in bodies) / len(bodies),
        "samples_per_payload": sum(n for _, n in bodies) / len(bodies),
    }
    try:
        if args.messages:
            for k in range(args.messages):
                await sender.send(*bodies[k % len(bodies)])
            await sender.all_acked()
            result.update(messages=sender.acked, samples=sender.samples, seconds=sender.last_ack - started)
        else:
            end = args.start_at + args.duration
            sender.window = (args.start_at, end)
            cpu = asyncio.create_task(window_cpu(args.start_at, end))
            k = 0
            while time.time() < end:
                await sender.send(*bodies[k % len(bodies)])
                k += 1
            samples = sender.samples_in_window
            result.update(
                samples=samples,
                rate=samples / args.duration,
                messages=sender.acked_in_window,
                messages_per_s=sender.acked_in_window / args.duration,
                seconds=args.duration,
                window_cpu_pct=await cpu,
            )
    finally:
        await client.disconnect()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mqtt_baseline")
    parser.add_argument("--port", type=int, required=True, help="broker port on 127.0.0.1")
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--max-payload", type=int, default=128 * 1024, help="uplink.max_payload_bytes")
    parser.add_argument(
        "--rate", type=float, default=100.0, help="publishes/s (uplink.max_publish_rate); 0 = no limit"
    )
    parser.add_argument(
        "--inflight", type=int, default=64, help="QoS 1 publishes awaiting PUBACK (uplink.max_inflight)"
    )
    parser.add_argument("--start-at", type=float, default=0.0, help="window start, epoch seconds")
    parser.add_argument("--duration", type=float, default=0.0, help="window length, seconds")
    parser.add_argument("--messages", type=int, default=0, help="publish this many payloads, time it, exit")
    parser.add_argument(
        "--historical", action="store_true", help="metrics flagged historical, as replayed ones are"
    )
    args = parser.parse_args(argv)
    if not args.messages and not args.duration:
        parser.error("give --start-at and --duration, or --messages")
    emit_result(asyncio.run(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
