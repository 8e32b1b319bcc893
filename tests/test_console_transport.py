"""The Transport page against three simulated VDA 5050 AGVs on a real broker: the map shows them, and
"where is load X" answers with the bridge's words."""

from __future__ import annotations

import pytest

from linebridge.drivers.vda5050.stations import zones
from linebridge.model import DeviceState
from tests.conftest import wait_for_state
from tests.console_helpers import ARTIFACTS, login, open_browser, start_console, until, watch_console
from tests.vda5050_helpers import fleet_device

pytestmark = pytest.mark.timeout(120)

ORANGE_PIXELS = """c => {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] > 90 && d[i + 1] < 170 && d[i + 2] < 80) n++;
  return n;
}"""


async def test_the_map_shows_three_agvs_and_an_unknown_load_is_said_so(broker, fleet, start_bridge):
    app = await start_bridge([fleet_device(broker)], transport={"zones": zones(), "interval_seconds": 0.05})
    for agv in ("agv-001", "agv-002", "agv-003"):
        await wait_for_state(app, agv, DeviceState.ONLINE)
    console = await start_console(app.api_address)
    try:
        async for browser in open_browser():
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            watch_console(page, errors)
            await login(page, console.url, "")
            await page.click("#nav a[href='#transport']")
            await until(page, "document.querySelector('#transport-body canvas[data-agvs=\"3\"]') !== null")
            canvas = page.locator("#transport-body canvas")
            assert await canvas.get_attribute("data-map") == "plant"
            assert await canvas.get_attribute("data-zones") == str(len(zones()["plant"]))
            # the first zone's outline is drawn in orange, a colour no AGV is drawn in: count its pixels
            orange = await canvas.evaluate(ORANGE_PIXELS)
            assert orange > 100, f"only {orange} pixels of the first zone's colour on the map"
            await page.fill("#load-id", "BODY-404")
            await page.click("#load-search button")
            await page.locator("#load-result", has_text="NotFound").wait_for()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=ARTIFACTS / "transport-live.png")
            assert [e for e in errors if "404" not in e] == []
    finally:
        await console.stop()
