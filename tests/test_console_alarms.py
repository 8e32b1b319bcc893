"""The Alarms & efficiency page against a bridge with analytics: an operator acknowledges an active alarm
from the page (audited under their token) and the OEE table shows the device."""

from __future__ import annotations

import pytest

from linebridge.model import DeviceState
from tests.conftest import sim_device, wait_for_state
from tests.console_helpers import ARTIFACTS, login, open_browser, start_console, until, watch_console
from tests.gates_helpers import callers

pytestmark = pytest.mark.timeout(120)
ANALYTICS = {
    "publish_interval_seconds": 0.1,
    "devices": {
        "sim-1": {
            "states": [{"state": "EXECUTE", "when": [{"signal": "values/1", "gt": -5}]}],
            "default_state": "IDLE",
            "rules": [
                {
                    "name": "always_high",
                    "type": "limit",
                    "kind": "hi",
                    "signal": "values/0",
                    "limit": -5,  # the sine never goes below -1: active from the first sample
                    "severity": 700,
                    "message": "values/0 above -5",
                }
            ],
        }
    },
}


async def test_an_operator_acknowledges_an_alarm_from_the_alarms_page(start_bridge, tmp_path):
    security, meta = callers(tmp_path, {"op": "operator"})
    app = await start_bridge(
        [sim_device("sim-1", signals=2, rate_hz=50)], security=security, analytics=ANALYTICS
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    token = meta["op"][0][1].removeprefix("Bearer ")
    console = await start_console(app.api_address)
    try:
        async for browser in open_browser():
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            watch_console(page, errors)
            await login(page, console.url, token)
            await page.click("#nav a[href='#alarms']")
            row = "#alarms-table tr[data-alarm='sim-1/always_high']"
            await page.locator(f"{row}[data-acked=false]").wait_for()
            assert "values/0 above -5" in await page.inner_text(row)
            await page.locator(f"{row} button", has_text="Acknowledge").click()
            await page.locator(f"{row}[data-acked=true]").wait_for()
            await page.locator("#oee-table tr[data-device='sim-1']").wait_for()
            page.on("dialog", lambda dialog: dialog.accept("sensor being replaced"))  # the shelving reason
            await page.locator(f"{row} button", has_text="Shelve").click()
            await page.locator(f"{row}[data-shelved=true]").wait_for()
            await page.locator(f"{row} button", has_text="Unshelve").click()
            await page.locator(f"{row}[data-shelved=false]").wait_for()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=ARTIFACTS / "alarms-live.png")
            assert errors == []
        audit = app.audit.path.read_text()
        assert '"alarm.acknowledge"' in audit and "token:op" in audit
        assert '"alarm.shelve"' in audit and "sensor being replaced" in audit
    finally:
        await console.stop()


FLIPPING = {
    "publish_interval_seconds": 0.1,
    # values/0 steps 0.01 rad a sample through 64 batches of 10 (one 6.4 rad turn of the sine) at 200
    # samples/s: EXECUTE and IDLE take turns about every 1.6 s
    "devices": {"sim-1": {"states": [{"state": "EXECUTE", "when": [{"signal": "values/0", "gt": 0}]}]}},
}
# pixels of the EXECUTE green and the IDLE grey-blue in the timeline canvas
STATE_PIXELS = """c => {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let execute = 0, idle = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] === 0x2c && d[i + 1] === 0xa0 && d[i + 2] === 0x2c) execute++;
    if (d[i] === 0x9f && d[i + 1] === 0xb3 && d[i + 2] === 0xc8) idle++;
  }
  return [execute, idle];
}"""


async def test_the_state_timeline_draws_each_state_change_of_a_device(start_bridge):
    app = await start_bridge(
        [sim_device("sim-1", signals=1, rate_hz=200, rows_per_batch=10)], analytics=FLIPPING
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    console = await start_console(app.api_address)
    try:
        async for browser in open_browser():
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            watch_console(page, errors)
            await login(page, console.url, "")
            await page.click("#nav a[href='#alarms']")
            timeline = page.locator("#state-timeline canvas[data-devices='1']")
            await timeline.wait_for()
            # redrawn every 2 s: wait until it holds at least three states (two changes seen live)
            await until(page, "+document.querySelector('#state-timeline canvas').dataset.changes >= 3", 30)
            execute, idle = await timeline.evaluate(STATE_PIXELS)
            assert execute > 50 and idle > 50, (execute, idle)
            assert "since" in await page.inner_text("#state-timeline .note")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=ARTIFACTS / "alarms-timeline.png", full_page=True)
            assert errors == []
    finally:
        await console.stop()


SWINGING = {
    "publish_interval_seconds": 0.1,
    "devices": {
        "sim-1": {
            "rules": [
                {
                    "name": "crest",
                    "type": "limit",
                    "kind": "hi",
                    "signal": "values/0",
                    "limit": 0.8,  # the sine (FLIPPING's) is above 0.8 for ~0.6 s of each 3.2 s turn
                    "severity": 500,
                    "message": "values/0 above 0.8",
                }
            ]
        }
    },
}


async def test_the_alarm_list_follows_watch_alarms_without_a_reload(start_bridge):
    app = await start_bridge(
        [sim_device("sim-1", signals=1, rate_hz=200, rows_per_batch=10)], analytics=SWINGING
    )
    await wait_for_state(app, "sim-1", DeviceState.ONLINE)
    console = await start_console(app.api_address)
    try:
        async for browser in open_browser():
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            watch_console(page, errors)
            await login(page, console.url, "")
            await page.click("#nav a[href='#alarms']")
            await page.locator("#alarms-table").wait_for()
            row = "#alarms-table tr[data-alarm='sim-1/crest']"
            # the alarm comes and goes with the sine: both states are seen with no click or navigation
            for active in ("true", "false", "true"):
                await page.locator(f"{row}[data-active={active}]").wait_for(timeout=15_000)
            assert errors == []
    finally:
        await console.stop()
