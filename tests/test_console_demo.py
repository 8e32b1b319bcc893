"""`linebridge demo` starts the web console and prints its URL; in a browser it shows the cell ONLINE."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys

import pytest

from tests.console_helpers import ARTIFACTS, ROOT, open_browser, until, watch_console
from tests.process_helpers import descendants, kill_tree, unique_suffix

SUFFIX = unique_suffix("c")
CELL = {f"{name}-{SUFFIX}" for name in ("robot-1", "robot-2", "robot-3", "ur-1", "plc-1")}

pytestmark = pytest.mark.timeout(240)


async def lines_until(stream: asyncio.StreamReader, prefix: str, seen: list[str]) -> str:
    """Read lines until one starts with `prefix`; its text."""
    while line := (await stream.readline()).decode():
        seen.append(line)
        if line.startswith(prefix):
            return line
    raise AssertionError(f"the demo ended without a {prefix!r} line:\n{''.join(seen)}")


async def test_make_demo_prints_the_console_url_and_the_page_shows_five_online_devices():
    demo = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            "-m",
            "linebridge.cli",
            "demo",
            "--grpc",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ],
        *["--console", "127.0.0.1:0", "--suffix", SUFFIX, "--duration", "180"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert demo.stdout is not None
    seen: list[str] = []
    try:
        line = await asyncio.wait_for(lines_until(demo.stdout, "web console: ", seen), 90)
        url = line.split()[2]
        assert url.startswith("http://127.0.0.1:"), line
        relay = asyncio.create_task(_drain(demo.stdout))
        async for browser in open_browser():
            page = await browser.new_page(viewport={"width": 1400, "height": 700})
            errors: list[str] = []
            watch_console(page, errors)
            await page.goto(url)
            await page.click("#login-form button[type=submit]")  # no token: the loopback bridge's local admin
            rows = "[...document.querySelectorAll('#devices-table tr[data-state=ONLINE]')].map(r => r.dataset.device)"
            await until(page, f"{rows}.filter(d => d.endsWith('-{SUFFIX}')).length === 5", timeout=90)
            online = set(await page.evaluate(rows))
            assert CELL <= online
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=ARTIFACTS / "demo-devices.png")
            await page.click("#nav a[href='#alarms']")
            await page.locator("#oee-table").wait_for()
            # the cell PLC raises conveyor.jam / cell.fault on its own: acknowledge one from the page
            mine = f"#alarms-table tr[data-alarm^='plc-1-{SUFFIX}/'][data-acked=false]"
            for _ in range(60):
                if await page.locator(mine).count():
                    break
                await page.click("#nav a[href='#devices']")
                await page.click("#nav a[href='#alarms']")
                await page.locator("#oee-table").wait_for()
                await asyncio.sleep(1)
            alarm = await page.locator(mine).first.get_attribute("data-alarm")
            await page.screenshot(path=ARTIFACTS / "demo-alarms.png")
            await page.locator(mine).first.locator("button", has_text="Acknowledge").click()
            acked = f"#alarms-table tr[data-alarm='{alarm}'][data-acked=false]"
            await until(
                page, f"!document.querySelector({json.dumps(acked)})"
            )  # acknowledged (or, cleared, gone)
            assert errors == []
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
    finally:
        if demo.returncode is None:
            children = descendants(demo.pid)
            with contextlib.suppress(ProcessLookupError):
                demo.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(demo.wait(), 60)
            except TimeoutError:
                await kill_tree(demo, children)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass
