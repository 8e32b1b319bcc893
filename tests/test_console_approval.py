"""Approving a discovered device from the console's Devices page: refused for an operator, done by an
admin, and the row turns ONLINE live (WatchDevices), over real mDNS on loopback."""

from __future__ import annotations

import pytest

from linebridge.drivers.mdns import Advertiser
from tests.console_helpers import ARTIFACTS, login, open_browser, start_console, watch_console
from tests.security_helpers import write_tokens
from tests.test_discovery import TEST_TYPE
from tests.test_security_approval import RUN, appears, discovering_bridge

pytestmark = pytest.mark.timeout(120)


async def test_an_admin_approves_a_discovered_device_from_the_devices_page(tmp_path):
    tokens = write_tokens(tmp_path / "tokens", ["op", "boss"])
    app = await discovering_bridge(
        tokens_file=str(tmp_path / "tokens"), identities={"token:op": "operator", "token:boss": "admin"}
    )
    visitor = f"visitor-{RUN}-c"
    ad = Advertiser(TEST_TYPE, visitor, 7103, {"signals": "2"})
    console = await start_console(app.api_address)
    try:
        await ad.start()
        await appears(app, visitor)
        async for browser in open_browser():
            errors: list[str] = []
            row = f"#devices-table tr[data-device='{visitor}']"
            page = await browser.new_page()
            watch_console(page, errors)
            await login(page, console.url, tokens["op"])
            await page.locator(f"{row}[data-state=DISCOVERED]", has_text="waiting for approval").wait_for()
            assert await page.is_hidden(f"{row} button")  # no Approve offered to an operator
            # posted anyway (with the session's CSRF token): the bridge refuses it
            refused = await page.evaluate(
                """async id => {
                  const r = await fetch(`/api/devices/${encodeURIComponent(id)}/approve`, {method: "POST",
                    credentials: "same-origin", headers: {"X-CSRF-Token": state.csrf}});
                  return [r.status, (await r.json()).error];
                }""",
                visitor,
            )
            assert refused == [403, "PermissionDenied"]
            assert visitor not in app.sessions
            assert [e for e in errors if "403" not in e] == []  # the browser logs the refused fetch
            admin = await browser.new_page(viewport={"width": 1400, "height": 600})
            await login(admin, console.url, tokens["boss"])
            await admin.click(f"{row} button")
            await admin.locator(f"{row}[data-state=ONLINE]").wait_for(timeout=30_000)
            await page.locator(f"{row}[data-state=ONLINE]").wait_for(
                timeout=30_000
            )  # the operator's page too
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await admin.screenshot(path=ARTIFACTS / "devices-approved.png")
    finally:
        await console.stop()
        await ad.stop()
        await app.stop()
