"""The short scenario subset on the simulated cell (`make test`); `make hil` runs the whole set.

The four scenarios run once per session through the same runner as `linebridge hil run`; each is one
test, and the HTML report they produce is opened in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from linebridge.hil.measure import ScenarioRun
from linebridge.hil.rig import load_rig
from linebridge.hil.runner import run_loaded
from linebridge.hil.scenario import load_scenario

HERE = Path(__file__).resolve().parent
RIG = HERE / "rigs" / "simulated-cell.yaml"
# mdns-move-robot: 22.5-33.2 s wall alone on the shared machine (cell build + 3 s settle + 10 s), under the 40 s
# a scenario may take here; mdns-disappear-robot (27.6-39.9 s) runs in `make hil` only.
SHORT = ["stall-robot", "reset-robot", "device-kill-ur", "mdns-move-robot"]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ScenarioRun]:
    rig = load_rig(RIG)
    scenarios = [load_scenario(HERE / "scenarios" / f"{name}.yaml", rig) for name in SHORT]
    report = tmp_path_factory.mktemp("hil-report")
    done = run_loaded(rig, scenarios, report)
    return {r.scenario.name: r for r in done} | {"": report}  # type: ignore[dict-item]


def _explain(run: ScenarioRun) -> str:
    rows = [f"{r.name}: {r.measured} vs {r.bound} ({r.detail})" for r in run.results if r.passed is False]
    return run.error or "; ".join(rows)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", SHORT)
def test_scenario_holds(runs, name):
    run = runs[name]
    assert run.passed, f"{name}: {_explain(run)}"
    assert run.recording.faults, "no fault was injected"


def chromium() -> str:
    # `make test` puts the browser scripts/ensure_browser.sh found into LINEBRIDGE_CHROMIUM.
    found = os.environ.get("LINEBRIDGE_CHROMIUM") or shutil.which("chromium")
    found = found or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if found is None:
        pytest.fail("the HTML report test needs Debian's chromium: apt-get install chromium")
    return found


def open_in_chromium(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM Chromium built from a local file, and every console message it logged.

    The report has no script, so any console line (a failed load, a parse or CSP error) is an error;
    Chromium's stderr does not say a message's level in a form worth parsing."""
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


def test_the_console_check_sees_an_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><script>console.error('broken report')</script></body></html>"
    )
    _, errors = open_in_chromium(page, tmp_path / "profile")
    assert any("broken report" in line for line in errors)


@pytest.mark.timeout(600)
def test_html_report_opens_with_one_timeline_per_scenario(runs, tmp_path):
    report = runs[""] / "report.html"
    html = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), (
        "the report fetches from the network"
    )
    dom, errors = open_in_chromium(report, tmp_path / "profile")
    assert not errors, errors
    timelines = re.findall(r'<svg class="timeline" data-scenario="([^"]+)"', dom)
    assert sorted(timelines) == sorted(SHORT)
    assert dom.count('class="fault"') >= len(SHORT)  # each timeline draws its fault window


def test_reports_name_every_scenario(runs):
    folder = runs[""]
    junit = (folder / "report.xml").read_text()
    summary = (folder / "report.md").read_text()
    for name in SHORT:
        assert f'testsuite name="{name}"' in junit and f"## {name}" in summary
