"""The raw MQTT baseline of the uplink scenarios: an independent client (paho-mqtt, threaded, none of the
bridge's MQTT code) publishing ready-made DDATA payloads.

`python -m bench.mqtt_baseline --port P --signals N --rows R --max-payload B --qos Q ...` first encodes
the bench driver's batches (N double signals x R rows) into full Sparkplug DDATA payloads with the
uplink's encoder, so every payload has the size and sample count of the bridge's full ones (trailer
included). Then paho publishes them at the same QoS as the uplink (0 by default, as Sparkplug 3.0
requires) and, unless `--rate 0`, under the same publish rate and with at most `--inflight` publishes
not yet written (QoS 0) or acknowledged (QoS 1). No bus, report-by-exception, encoding or outbox.

A payload counts as published when paho reports it (`on_publish`: written to the socket for QoS 0,
PUBACK for QoS 1). With `--start-at T --duration S` it publishes over and over and counts what was
published inside the window (`uplink_throughput`). With `--messages M` it connects, publishes M
payloads and reports the seconds from the start of the connect to the last one (`uplink_replay`, with
`--historical`: every metric flagged historical, as the outbox stores data from an outage).
Prints one RESULT line.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import threading
import time

import paho.mqtt.client as paho

from bench.common import emit_result, window_cpu
from linebridge.model import SampleBatch, ValueType
from linebridge.uplink.encoder import SparkplugEncoder, now_ms, trailer

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


class TokenBucket:
    """The uplink's publish-rate rule (rate per second, burst of a tenth of a second), for a thread."""

    def __init__(self, rate: float) -> None:
        self.rate, self.burst = rate, max(1.0, rate / 10)
        self.tokens, self.stamp = self.burst, time.monotonic()

    def acquire(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            time.sleep((1 - self.tokens) / self.rate)
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        self.tokens -= 1


class Sender:
    """paho publishes under the rate limit and the in-flight cap; counts what paho reports published."""

    def __init__(self, client: paho.Client, qos: int, rate: float, inflight: int) -> None:
        self.client, self.qos, self.inflight = client, qos, inflight
        self.limiter = TokenBucket(rate) if rate else None
        self.samples_of: dict[int, int] = {}
        self.sent = 0
        self.done = 0
        self.samples = 0
        self.done_in_window = 0
        self.samples_in_window = 0
        self.window = (0.0, 0.0)
        self.last = 0.0
        self._room = threading.Condition()
        client.on_publish = self._published

    def send(self, body: bytes, samples: int) -> None:
        """Wait for room and a token, publish."""
        with self._room:
            self._room.wait_for(lambda: self.sent - self.done < self.inflight)
            self.sent += 1
        if self.limiter is not None:
            self.limiter.acquire()
        info = self.client.publish(TOPIC, body, qos=self.qos)
        with self._room:
            if info.mid not in self.samples_of or self.samples_of[info.mid] != -1:
                self.samples_of[info.mid] = samples
            else:  # published before we got here
                del self.samples_of[info.mid]
                self._count(samples)

    def _published(self, _client: paho.Client, _userdata: object, mid: int, *_: object) -> None:
        with self._room:
            samples = self.samples_of.pop(mid, None)
            if samples is None:
                self.samples_of[mid] = -1  # publish() has not returned yet
                return
            self._count(samples)

    def _count(self, samples: int) -> None:
        self.done += 1
        self.samples += samples
        self.last = time.time()
        if self.window[0] <= self.last < self.window[1]:
            self.done_in_window += 1
            self.samples_in_window += samples
        self._room.notify_all()

    def all_published(self) -> None:
        with self._room:
            self._room.wait_for(lambda: self.done >= self.sent, timeout=120)


def run(args: argparse.Namespace) -> dict:
    bodies = payloads(args.signals, args.rows, args.max_payload, args.historical)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-bare-{os.getpid()}")
    client.max_inflight_messages_set(0)  # the sender's own cap, as in the uplink
    started = time.time()
    client.connect("127.0.0.1", args.port, 30)
    client.loop_start()
    sender = Sender(client, args.qos, args.rate, args.inflight)
    result: dict[str, object] = {
        "payload_bytes": sum(len(b) for b, _ in bodies) / len(bodies),
        "samples_per_payload": sum(n for _, n in bodies) / len(bodies),
        "qos": args.qos,
    }
    try:
        if args.messages:
            for k in range(args.messages):
                sender.send(*bodies[k % len(bodies)])
            sender.all_published()
            result.update(messages=sender.done, samples=sender.samples, seconds=sender.last - started)
        else:
            end = args.start_at + args.duration
            sender.window = (args.start_at, end)
            cpu = threading.Thread(
                target=lambda: result.update(window_cpu_pct=asyncio.run(window_cpu(args.start_at, end)))
            )
            cpu.start()
            k = 0
            while time.time() < end:
                sender.send(*bodies[k % len(bodies)])
                k += 1
            cpu.join()
            samples = sender.samples_in_window
            result.update(
                samples=samples,
                rate=samples / args.duration,
                messages=sender.done_in_window,
                messages_per_s=sender.done_in_window / args.duration,
                seconds=args.duration,
            )
    finally:
        client.disconnect()
        client.loop_stop()
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
        "--inflight", type=int, default=64, help="publishes not yet published (uplink.max_inflight)"
    )
    parser.add_argument("--qos", type=int, choices=(0, 1), default=0, help="uplink.data_qos (default 0)")
    parser.add_argument("--start-at", type=float, default=0.0, help="window start, epoch seconds")
    parser.add_argument("--duration", type=float, default=0.0, help="window length, seconds")
    parser.add_argument("--messages", type=int, default=0, help="publish this many payloads, time it, exit")
    parser.add_argument(
        "--historical", action="store_true", help="metrics flagged historical, as replayed ones are"
    )
    args = parser.parse_args(argv)
    if not args.messages and not args.duration:
        parser.error("give --start-at and --duration, or --messages")
    emit_result(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
