"""console_live: 20 pinned signals at 500 Hz to 5 sessions of the web console; the console's CPU and the
sample-to-page delay.

A `sim` device publishes 20 doubles at 500 Hz (10,000 samples/s), each stamped with `time.time_ns()`.
The console (`bench.console_proc`, its own process) serves 5 sessions: 4 WebSocket clients
(`bench.console_clients --mode ws`, one process, logging in and pinning as the page does) and one real
page in headless Chromium that pins the 20 signals on the Signals page. Delay = arrival time minus the
sample's source timestamp, for every sample, in 1 ms bins; the page measures it in its own JavaScript
(`window.__lbLive.delays`); `console_send_*` is source stamp -> the console sending the frame (the
console's share of the delay, the rest is the WebSocket hop and the reader's scheduling). Baseline: the same 5 subscriptions straight from the bridge through the
SDK (`--mode sdk`), measured in the same window on the same loaded machine, so the ratio is what the
console adds on top of the gRPC path.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import psutil

from bench.common import percentiles
from bench.harness import Context, start_bridge
from bench.procs import Child, Processes

NAME = "console_live"
TARGET = "page p99 <= 100 ms and console CPU <= 25 % of one core"
SIGNALS, RATE_HZ, SESSIONS = 20, 500, 5
PATHS = [f"sim-1/values/{i}" for i in range(SIGNALS)]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def quantiles(bins: dict[int, int]) -> tuple[float, float, int]:
    """(p50, p99, samples) of a histogram of 1 ms bins."""
    p50, p99 = percentiles(((float(k), v) for k, v in bins.items()), [0.5, 0.99])
    return p50, p99, sum(bins.values())


def merge(*histograms: dict) -> dict[int, int]:
    out: dict[int, int] = {}
    for h in histograms:
        for k, v in h.items():
            out[int(k)] = out.get(int(k), 0) + int(v)
    return out


async def clients(
    procs: Processes, label: str, mode: str, url: str, sessions: int, start_at: float, duration: float
) -> Child:
    args = ["--mode", mode, "--url", url, "--paths", *PATHS, "--sessions", str(sessions)]
    args += ["--start-at", f"{start_at:.6f}", "--duration", f"{duration:g}"]
    return await procs.start(label, "-m", "bench.console_clients", *args, ready=False)


def chromium() -> str | None:
    for candidate in (os.environ.get("LINEBRIDGE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


async def page_window(url: str, start_at: float, duration: float) -> dict[int, int]:
    """One real page: log in, pin the 20 signals on the Signals page, histogram of the window."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.goto(url)
            await page.click("#login-form button[type=submit]")
            await page.wait_for_selector("#page-devices:not([hidden])")
            await page.click("#nav a[href='#signals']")
            await page.fill("#signal-glob", "sim-1/values/*")
            await page.click("#signal-search button")
            for path in PATHS:
                await page.locator(f"#signals-table tr[data-path='{path}'] input[type=checkbox]").check()
            await asyncio.sleep(max(0.0, start_at - time.time()))
            await page.evaluate("window.__lbLive.delays.fill(0)")
            await asyncio.sleep(duration)
            bins = await page.evaluate("Array.from(window.__lbLive.delays)")
        finally:
            await browser.close()
    return {i: c for i, c in enumerate(bins) if c}


async def cpu_share(child: Child, start_at: float, duration: float) -> float:
    """The child's CPU use over the window, percent of one core."""
    await asyncio.sleep(max(0.0, start_at - time.time()))
    proc = psutil.Process(child.pid)
    t0 = proc.cpu_times()
    await asyncio.sleep(duration)
    t1 = proc.cpu_times()
    return 100.0 * ((t1.user + t1.system) - (t0.user + t0.system)) / duration


async def run(ctx: Context) -> dict:
    warmup, duration = ctx.seconds(5, 2), ctx.seconds(20, 5)
    device = {
        "id": "sim-1",
        "driver": "sim",
        "endpoint": "sim://sim-1",
        "options": {"signals": SIGNALS, "rate_hz": RATE_HZ},
    }
    browser = chromium() is not None
    if not browser:
        ctx.notes.append("no chromium (make browser): 5 WebSocket sessions, no page-side measurement")
    async with Processes() as procs:
        bridge = await start_bridge(procs, "console-bridge", [device])
        console = await procs.start("console", "-m", "bench.console_proc", "--target", bridge.endpoint)
        start_at = time.time() + 4 + warmup  # chromium starts and pins within this
        ws = await clients(
            procs, "console-ws", "ws", console.endpoint, SESSIONS - browser, start_at, duration
        )
        base = await clients(procs, "console-sdk", "sdk", bridge.endpoint, SESSIONS, start_at, duration)
        cpu = asyncio.create_task(cpu_share(console, start_at, duration))
        bridge_cpu = asyncio.create_task(cpu_share(bridge, start_at, duration))
        page = await page_window(console.endpoint, start_at, duration) if browser else {}
        ws_result = await procs.result(ws, timeout=start_at - time.time() + duration + 60)
        baseline = await procs.result(base, timeout=start_at - time.time() + duration + 60)
        console_cpu, bridge_cpu_pct = await cpu, await bridge_cpu
    base_p50, base_p99, base_n = quantiles(merge(baseline["bins"]))
    ws_p50, ws_p99, ws_n = quantiles(merge(ws_result["bins"]))
    sent_p50, sent_p99, _ = quantiles(merge(ws_result["sent_bins"]))
    page_p50, page_p99, page_n = quantiles(page) if page else (float("nan"), float("nan"), 0)
    value = page_p99 if page else ws_p99
    expected = SIGNALS * RATE_HZ * duration
    return {
        "value": value,
        "unit": "ms",
        "baseline": base_p99,
        "ratio": value / base_p99 if base_p99 else None,
        "target": TARGET,
        "met": value <= 100 and console_cpu <= 25,
        "page_p50_ms": page_p50,
        "page_p99_ms": page_p99,
        "page_share": page_n / expected,
        "ws_p50_ms": ws_p50,
        "ws_p99_ms": ws_p99,
        "ws_share": ws_n / (expected * (SESSIONS - browser)),
        "ws_messages_per_s": ws_result["messages"] / duration / (SESSIONS - browser),
        "console_send_p50_ms": sent_p50,  # source stamp -> the console sends the frame
        "console_send_p99_ms": sent_p99,
        "sdk_p50_ms": base_p50,
        "sdk_p99_ms": base_p99,
        "sdk_share": base_n / (expected * SESSIONS),
        "console_cpu_pct": console_cpu,
        "bridge_cpu_pct": bridge_cpu_pct,
        "machine_cpu_pct": psutil.cpu_percent(interval=None),
        "sessions": SESSIONS,
        "samples_per_s_per_session": SIGNALS * RATE_HZ,
    }
