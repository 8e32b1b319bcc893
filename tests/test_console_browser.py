"""The web console in a real browser (Debian's headless Chromium under Playwright) against a bridge with
simulated devices: devices, a live plot, a write seen through the CLI, a refused motion, role and CSRF."""

from __future__ import annotations

import json

import pytest

from linebridge.client import AsyncClient
from linebridge.devices.catalog import DriverCatalog
from linebridge.drivers.sim.driver import SimDriver
from linebridge.model import DeviceState
from tests.conftest import sim_device, wait_for_state
from tests.console_helpers import ARTIFACTS, cli, login, open_browser, start_console, until, watch_console
from tests.gates_helpers import ArmDriver, arm_device, audit_records, callers

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def catalog() -> DriverCatalog:
    return DriverCatalog({"arm": ArmDriver, "sim": SimDriver})


@pytest.fixture
async def cell(start_bridge, tmp_path):
    """A bridge with a 500 Hz sim device and an arm under the default policy (motion off); tokens for an
    admin, an operator and a viewer."""
    security, meta = callers(tmp_path, {"admin": "admin", "op": "operator", "viewer": "viewer"})
    app = await start_bridge(
        [sim_device("sim-1", signals=4, rate_hz=500), arm_device("arm-1")], security=security
    )
    for device in ("sim-1", "arm-1"):
        await wait_for_state(app, device, DeviceState.ONLINE)
    tokens = {name: m[0][1].removeprefix("Bearer ") for name, m in meta.items()}
    return app, tokens


@pytest.fixture
async def console(cell):
    app, _ = cell
    server = await start_console(app.api_address)
    yield server
    await server.stop()


@pytest.fixture
async def browser(console):
    async for b in open_browser():
        yield b


async def test_every_page_works_for_an_operator(cell, console, browser):
    app, tokens = cell
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    watch_console(page, errors)
    await login(page, console.url, tokens["op"])

    # Devices: both simulated devices ONLINE, with driver and vendor/model.
    online = page.locator("#devices-table tbody tr[data-state=ONLINE]")
    await online.nth(1).wait_for()
    assert sorted(await online.evaluate_all("rows => rows.map(r => r.dataset.device)")) == ["arm-1", "sim-1"]
    assert "Synthetic" in await page.inner_text("#devices-table tr[data-device=sim-1]")
    await page.screenshot(path=ARTIFACTS / "devices.png")

    # Signals: search, live values, pin one 500 Hz signal; the plot receives points.
    await page.click("#nav a[href='#signals']")
    await page.fill("#signal-glob", "sim-1/values/*")
    await page.click("#signal-search button")
    row = page.locator("#signals-table tr[data-path='sim-1/values/0']")
    await row.locator(".quality", has_text="GOOD").wait_for()
    await row.locator("input[type=checkbox]").check()
    await until(page, "window.__lbLive.samples > 500")
    points = await page.evaluate("window.__lbLive.messages")
    assert 0 < points < await page.evaluate("window.__lbLive.samples")  # batched: many samples a message
    await page.click("#plot-pause")  # the view holds still while samples keep arriving
    held, seen = await page.inner_text("#plot-info"), await page.evaluate("window.__lbLive.samples")
    await until(page, f"window.__lbLive.samples > {seen} + 500")
    assert await page.inner_text("#plot-info") == held
    await page.click("#plot-pause")
    await until(page, f"document.querySelector('#plot-info').textContent !== {json.dumps(held)}")
    await page.select_option("#plot-window", "60000")
    async with page.expect_download() as download:
        await page.click("#plot-csv")
    lines = (await (await download.value).path()).read_text().splitlines()
    assert lines[0] == "time,path,value" and lines[1].split(",")[1] == "sim-1/values/0" and len(lines) > 100
    await page.screenshot(path=ARTIFACTS / "signals.png")

    # Commands: a write from the page, confirmed, followed to SUCCEEDED, and seen through the CLI.
    await page.click("#nav a[href='#commands']")
    await page.select_option("#cmd-device", "sim-1")
    await page.select_option("#cmd-action", "write")
    await page.select_option("#cmd-signal", "sim-1/setpoint")
    await page.fill("#cmd-value", "7.25")
    await page.click("#cmd-send")
    await page.click("#confirm-ok")
    await page.locator("#cmd-events li[data-state=SUCCEEDED]").wait_for()
    await page.locator("#cmd-current[data-value='7.25']").wait_for()  # read back from the device
    code, out, err = await cli(
        "read", "--target", app.api_address, "--token", tokens["op"], "--from-device", "sim-1/setpoint"
    )
    assert code == 0 and out.split()[:3] == ["sim-1/setpoint", "7.25", "mm/s"], (out, err)
    who = [r["who"]["name"] for r in audit_records(app) if r.get("what", {}).get("device") == "sim-1"]
    assert who and set(who) == {"token:op"}  # audited under the user's own identity

    # Motion under the default policy: refused, with the gate's reason on the page.
    await page.select_option("#cmd-device", "arm-1")
    await page.select_option("#cmd-action", "move_joints")
    await page.fill("#cmd-positions", "0.1, 0.1, 0.1, 0.1, 0.1, 0.1")
    await page.click("#cmd-send")
    await page.click("#confirm-ok")
    refused = page.locator("#cmd-result.refused")
    await refused.wait_for()
    assert "[motion_enabled]" in await refused.inner_text()
    assert ArmDriver and app.driver_of("arm-1").executed == []  # type: ignore[attr-defined]
    await page.locator("#history-table td", has_text="REJECTED").first.wait_for()
    await page.screenshot(path=ARTIFACTS / "commands.png")

    # Uplink, and the pages of services this bridge does not have: said plainly, nothing made up.
    await page.click("#nav a[href='#uplink']")
    await page.locator("#uplink-fields dd", has_text="DISABLED").wait_for()
    await page.screenshot(path=ARTIFACTS / "uplink.png")
    await page.click("#nav a[href='#alarms']")  # this bridge has analytics, with nothing configured
    await page.locator("#alarms-table").wait_for()
    await page.locator("#oee-table").wait_for()
    await page.screenshot(path=ARTIFACTS / "alarms.png")
    await page.click("#nav a[href='#transport']")  # a fleet-less bridge: the search, no map
    await page.locator("#load-search").wait_for()
    await page.locator("#transport-maps[data-maps='']").wait_for(state="attached")  # drawn: no map
    assert await page.locator("#transport-body canvas").count() == 0
    await page.screenshot(path=ARTIFACTS / "transport.png")

    # The only console error is the refused motion's HTTP 409, which the page shows as the gate's reason.
    assert [e for e in errors if "409" not in e] == [], errors
    await page.close()


async def test_first_paint_is_fast_and_without_errors(cell, console, browser):
    page = await browser.new_page()
    errors: list[str] = []
    watch_console(page, errors)
    await page.goto(console.url)
    await page.wait_for_selector("#page-login:not([hidden])")
    paint = await page.evaluate("performance.getEntriesByType('paint').map(p => [p.name, p.startTime])")
    names = [name for name, _ in paint]
    assert "first-contentful-paint" in names or "first-paint" in names
    (ARTIFACTS / "first-paint.json").parent.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "first-paint.json").write_text(
        json.dumps(paint)
    )  # the number goes to the report, not an assert
    await page.screenshot(path=ARTIFACTS / "login.png")
    assert errors == []
    await page.close()


async def test_a_viewer_sees_but_cannot_write(cell, console, browser):
    app, tokens = cell
    page = await browser.new_page()
    await login(page, console.url, tokens["viewer"])
    await page.locator("#devices-table tbody tr[data-state=ONLINE]").first.wait_for()
    assert "viewer" in await page.inner_text("#who")
    await page.click("#nav a[href='#commands']")
    # the page offers no command to a viewer, and says why
    await page.locator("#cmd-viewer").wait_for()
    assert await page.is_hidden("#command-form")
    # a write posted anyway (with the session's CSRF token) is refused by the bridge, not the page
    refused = await page.evaluate(
        """async () => {
          const r = await fetch("/api/commands", {method: "POST", credentials: "same-origin",
            headers: {"X-CSRF-Token": state.csrf, "Content-Type": "application/json"},
            body: JSON.stringify({device: "sim-1", action: "write", signal: "sim-1/setpoint", value: "99"})});
          return [r.status, (await r.json()).error];
        }"""
    )
    assert refused == [403, "PermissionDenied"]
    async with AsyncClient(app.api_address, token=tokens["admin"]) as admin:
        assert (await admin.read(["sim-1/setpoint"], from_device=True)).latest()[
            "sim-1/setpoint"
        ].value == 0.0
    await page.close()


async def test_an_operator_is_offered_commands_and_no_approval(cell, console, browser):
    _, tokens = cell
    page = await browser.new_page()
    await login(page, console.url, tokens["op"])
    await page.locator("#devices-table tbody tr[data-state=ONLINE]").first.wait_for()
    assert "operator" in await page.inner_text("#who")
    await page.click("#nav a[href='#commands']")
    await page.locator("#command-form").wait_for()
    assert await page.is_hidden("#cmd-viewer")
    assert await page.evaluate("document.body.dataset.role") == "OPERATOR"
    await page.close()


async def test_a_wrong_token_is_refused_at_login(cell, console, browser):
    _, tokens = cell
    page = await browser.new_page()
    await page.goto(console.url)
    await page.fill("#login-token", tokens["op"] + "x")
    await page.click("#login-form button[type=submit]")
    await page.locator("#status.error", has_text="Unauthenticated").wait_for()
    assert await page.is_hidden("#nav")
    await page.close()


async def test_state_changes_need_the_sessions_csrf_token(cell, console, browser):
    app, tokens = cell
    page = await browser.new_page()
    await login(page, console.url, tokens["op"])
    request = page.context.request
    body = {"device": "sim-1", "action": "write", "signal": "setpoint", "value": 5}
    url = console.url + "api/commands"
    csrf = (await (await request.get(console.url + "api/session")).json())["csrf"]
    missing = await request.post(url, data=body)
    wrong = await request.post(url, data=body, headers={"X-CSRF-Token": csrf + "x"})
    foreign = await request.post(
        url, data=body, headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    )
    assert [missing.status, wrong.status, foreign.status] == [403, 403, 403]
    assert "CSRF" in (await missing.json())["message"]
    async with AsyncClient(app.api_address, token=tokens["admin"]) as admin:
        assert await admin.commands("sim-1") == []  # nothing reached the bridge
    good = await request.post(url, data=body, headers={"X-CSRF-Token": csrf})
    assert good.status == 200, await good.text()
    await page.close()


async def test_a_websocket_from_another_origin_is_refused(cell, console, browser):
    import websockets

    _, tokens = cell
    page = await browser.new_page()
    await login(page, console.url, tokens["op"])
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in await page.context.cookies())
    url = console.url.replace("http", "ws", 1) + "ws"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            url, additional_headers={"Cookie": cookie, "Origin": "http://evil.example"}
        ):
            pass
    assert refused.value.response.status_code == 403
    with pytest.raises(websockets.InvalidStatus):  # no session: no live data either
        async with websockets.connect(url):
            pass
    own = console.url.rstrip("/")
    async with websockets.connect(url, additional_headers={"Cookie": cookie, "Origin": own}) as ws:
        assert json.loads(await ws.recv())["t"] == "device"
    await page.close()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "bad request"),
        ([1, 2], "a command is a JSON object"),
        ({"device": "sim-1", "action": "dance"}, "unknown action 'dance'"),
        (
            {"device": "sim-1", "action": "write", "signal": "setpoint", "value": "fast"},
            "'fast' is not a double value",
        ),
        (
            {"device": "sim-1", "action": "write", "signal": "nope", "value": 1},
            "device sim-1 has no signal 'nope'",
        ),
        ({"device": "sim-1", "action": "invoke", "method": "Echo", "args": []}, "Echo takes 1 argument(s)"),
        ({"device": "arm-1", "action": "move_joints", "positions": ["abc"]}, "'abc' is not a double value"),
        ({"device": "ghost", "action": "stop"}, "unknown device"),
    ],
)
async def test_bad_command_requests_get_a_clear_error(cell, console, browser, body, message):
    app, tokens = cell
    page = await browser.new_page()
    await login(page, console.url, tokens["op"])
    csrf = (await (await page.context.request.get(console.url + "api/session")).json())["csrf"]
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    answer = await page.context.request.post(
        console.url + "api/commands",
        data=data,
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    )
    assert answer.status in (400, 404), await answer.text()
    assert message in (await answer.json())["message"]
    await page.close()


async def test_a_running_command_is_cancelled_from_the_history(cell, console, browser):
    _, tokens = cell
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    await login(page, console.url, tokens["op"])
    await page.click("#nav a[href='#commands']")
    await page.select_option("#cmd-device", "sim-1")
    await page.select_option("#cmd-action", "invoke")
    await page.select_option("#cmd-method", "Slow")
    await page.fill("#cmd-args", "30")
    await page.click("#cmd-send")
    await page.click("#confirm-ok")
    await page.locator("#cmd-events li[data-state=RUNNING]").first.wait_for()
    await page.click("#cmd-refresh")
    await page.locator("#history-table button", has_text="Cancel").click()
    await page.locator("#cmd-events li[data-state=CANCELLED]").wait_for()
    await page.close()


async def test_a_bridge_without_a_service_gets_a_plain_not_available(cell, console, browser, monkeypatch):
    from linebridge.console import api

    monkeypatch.setitem(api.OPTIONAL, "transport", "/linebridge.v1.NoSuchService/ListTransporters")
    _, tokens = cell
    page = await browser.new_page()
    await login(page, console.url, tokens["op"])
    await page.click("#nav a[href='#transport']")
    said = page.locator("#transport-body .unavailable", has_text="not available on this bridge")
    await said.wait_for()
    assert "NoSuchService/ListTransporters is not implemented" in await said.inner_text()
    await page.close()
