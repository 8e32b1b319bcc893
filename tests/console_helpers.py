"""Helpers of the console tests: a cell with tokens, the console on a free port, Debian's headless Chromium."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from linebridge.console.config import ConsoleOptions
from linebridge.console.server import ConsoleServer

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_or_skip() -> str:
    """The chromium binary `make test` provisioned (LINEBRIDGE_CHROMIUM), else Debian's; playwright never
    downloads a browser here. Skips when there is none (`make browser` installs it)."""
    for candidate in (os.environ.get("LINEBRIDGE_CHROMIUM"), CHROMIUM, shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("no chromium: run `make browser` (the console's browser tests drive it headless)")


async def start_console(target: str, **options: Any) -> ConsoleServer:
    """The console for `target` on a free loopback port."""
    server = ConsoleServer(ConsoleOptions(target=target, listen="127.0.0.1:0", **options))
    await server.start()
    return server


async def open_browser() -> AsyncIterator[Any]:
    """A headless Chromium under Playwright; yields the browser."""
    from playwright.async_api import async_playwright

    executable = chromium_or_skip()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def cli(*args: str) -> tuple[int, str, str]:
    """Run `linebridge ARGS...` as a user would; (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "linebridge.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def login(page: Any, url: str, token: str) -> None:
    """Open the console and log in with `token`; returns once the Devices page shows."""
    await page.goto(url)
    await page.fill("#login-token", token)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#page-devices:not([hidden])")


async def until(page: Any, expression: str, timeout: float = 20.0) -> Any:
    """Poll `expression` in the page until it is truthy (wait_for_function would eval a string, which
    the console's Content-Security-Policy forbids)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not (value := await page.evaluate(expression)):
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {expression}")
        await asyncio.sleep(0.05)
    return value


def watch_console(page: Any, errors: list[str]) -> None:
    """Collect the page's console errors and uncaught exceptions into `errors`."""
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
