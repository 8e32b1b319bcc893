"""Load for `console_live`: N sessions that pin signals and histogram each sample's delay from its source
timestamp to arrival. `--mode ws`: sessions of the web console (login, then its WebSocket, as a page
does); `--mode sdk`: the baseline, the same subscriptions straight from the bridge through the SDK.

`python -m bench.console_clients --mode ws --url URL --paths P ... --sessions 4 --start-at T --duration D`
prints `RESULT {"bins": {ms: count}, "samples": n, "messages": m}` (bins of 1 ms, 10 s cap).
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import json
import struct
import time
import urllib.request

import numpy as np

from bench.common import emit_result
from linebridge.client import AsyncClient

CAP = 10_000


class Tally:
    """Delay histogram of the samples that arrive inside the window."""

    def __init__(self, start_at: float, end_at: float) -> None:
        self.start_at, self.end_at = start_at, end_at
        self.bins = np.zeros(CAP + 1, np.int64)
        self.sent_bins = np.zeros(CAP + 1, np.int64)  # source stamp -> the console sending it (ws mode)
        self.samples = self.messages = 0

    def add(self, stamps_ms: np.ndarray, sent_ms: float = 0.0) -> None:
        now = time.time()
        if not self.start_at <= now < self.end_at or not stamps_ms.size:
            return
        if sent_ms:
            held = np.clip(np.rint(sent_ms - stamps_ms), 0, CAP).astype(np.int64)
            self.sent_bins += np.bincount(held, minlength=CAP + 1)
        delays = np.clip(np.rint(now * 1e3 - stamps_ms), 0, CAP).astype(np.int64)
        self.bins += np.bincount(delays, minlength=CAP + 1)
        self.samples += int(stamps_ms.size)
        self.messages += 1


def login(url: str) -> str:
    """Log in without a token (a loopback bridge's local caller); the session cookie."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    csrf = json.load(opener.open(url + "api/session"))["csrf"]
    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    opener.open(urllib.request.Request(url + "api/login", data=b'{"token": ""}', headers=headers))
    return "; ".join(f"{c.name}={c.value}" for c in jar)


async def ws_session(url: str, paths: list[str], tally: Tally) -> None:
    import websockets

    cookie = await asyncio.to_thread(login, url)
    async with websockets.connect(
        url.replace("http", "ws", 1) + "ws", additional_headers={"Cookie": cookie}, max_size=2**26
    ) as ws:
        await ws.send(json.dumps({"pin": paths}))
        while time.time() < tally.end_at:
            message = await ws.recv()
            if isinstance(message, bytes):
                size = struct.unpack_from("<I", message)[0]
                header = json.loads(message[4 : 4 + size])
                stamps = np.frombuffer(message, "<f8", header["n"], 4 + size + (-(4 + size)) % 8)
                tally.add(stamps, header["sent_ms"])


async def sdk_session(target: str, paths: list[str], tally: Tally) -> None:
    async with AsyncClient(target) as client:
        async for batch in client.subscribe(paths, history_seconds=0):
            tally.add(batch.timestamps / 1e6)
            if time.time() >= tally.end_at:
                return


async def main(args: argparse.Namespace) -> None:
    tally = Tally(args.start_at, args.start_at + args.duration)
    if args.mode == "ws":
        sessions = [ws_session(args.url, args.paths, tally) for _ in range(args.sessions)]
    else:
        sessions = [sdk_session(args.url, args.paths, tally) for _ in range(args.sessions)]
    await asyncio.gather(*sessions)
    bins = {int(i): int(c) for i, c in enumerate(tally.bins) if c}
    sent = {int(i): int(c) for i, c in enumerate(tally.sent_bins) if c}
    emit_result({"bins": bins, "sent_bins": sent, "samples": tally.samples, "messages": tally.messages})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["ws", "sdk"], required=True)
    parser.add_argument("--url", required=True, help="the console's URL (ws) or the bridge's host:port (sdk)")
    parser.add_argument("--paths", nargs="+", required=True)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    asyncio.run(main(parser.parse_args()))
