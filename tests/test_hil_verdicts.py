"""Verdicts from a hand-made recording: detection, recovery, rates, gaps, commands, and the reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from linebridge.hil.measure import CommandRecord, MoveRecord, Recording, ScenarioRun
from linebridge.hil.report_html import html_report
from linebridge.hil.report_junit import junit_xml
from linebridge.hil.report_md import markdown
from linebridge.hil.rig import load_rig
from linebridge.hil.scenario import Scenario
from linebridge.hil.verdicts import verdicts

RIG = load_rig(Path(__file__).resolve().parent.parent / "hil_tests" / "rigs" / "simulated-cell.yaml")


def scenario(steps: list[dict], expect: list[dict]) -> Scenario:
    return Scenario.model_validate({"name": "s", "duration": 10, "steps": steps, "expect": expect})


def recording() -> Recording:
    rec = Recording(["robot-1", "ur-1", "plc-1"])
    rec.states["robot-1"] = [(-3.0, "ONLINE"), (2.5, "OFFLINE"), (2.6, "CONNECTING"), (6.0, "ONLINE")]
    rec.states["ur-1"] = [(-3.0, "ONLINE")]
    rec.arrivals["ur-1"] = [np.arange(-3.0, 10.0, 0.01)]  # 100/s throughout
    rec.arrivals["plc-1"] = [np.arange(-3.0, 1.0, 0.01), np.arange(1.0, 10.0, 0.02)]  # halves at t = 1
    rec.arrivals["robot-1"] = [np.arange(-3.0, 2.5, 0.01), np.arange(6.0, 10.0, 0.01)]
    rec.commands.append(
        CommandRecord("robot-1", "write", sent=3.0, ended=3.2, outcome="DeviceUnavailable UNAVAILABLE")
    )
    return rec


def by_name(results, text):  # type: ignore[no-untyped-def]
    return next(r for r in results if text in r.name)


def test_detection_recovery_and_fail_fast():
    s = scenario(
        [{"at": 1, "fault": "stall", "device": "robot-1", "seconds": 4}],
        [
            {"check": "leaves_online", "device": "robot-1", "within": 1},
            {"check": "online_again", "device": "robot-1", "within": 2},
            {"check": "fails_fast", "device": "robot-1", "within": 0.1},
        ],
    )
    results = verdicts(RIG, s, recording())
    detection = by_name(results, "detection")
    assert detection.measured == 1.5 and detection.passed is False  # left at 2.5 s, bound 1 s after 1 s
    recovery = by_name(results, "recovery")
    assert recovery.measured == 1.0 and recovery.passed is True  # released at 5 s, ONLINE at 6 s
    fail_fast = by_name(results, "fail-fast")
    assert abs(fail_fast.measured - 0.2) < 1e-9 and fail_fast.passed is False


def test_recovery_after_an_instant_fault_counts_from_the_release_to_online_after_leaving():
    s = scenario(
        [{"at": 2, "fault": "reset", "device": "robot-1"}],
        [{"check": "online_again", "device": "robot-1", "within": 5}],
    )
    recovery = by_name(verdicts(RIG, s, recording()), "recovery")
    assert recovery.measured == 4.0 and recovery.passed is True  # reset at 2 s, left 2.5 s, back 6 s


def test_rates_and_gaps():
    s = scenario(
        [{"at": 1, "fault": "stall", "device": "robot-1", "seconds": 4}],
        [{"check": "rates_steady", "tolerance": 0.1}, {"check": "max_gap", "device": "robot-1", "within": 2}],
    )
    results = verdicts(RIG, s, recording())
    assert by_name(results, "ur-1 sample rate").passed is True
    plc = by_name(results, "plc-1 sample rate")
    assert plc.passed is False and abs(plc.measured + 50) < 2  # 100/s -> 50/s
    gap = next(r for r in results if r.name == "robot-1 max sample gap" and r.passed is not None)
    assert abs(gap.measured - 3.5) < 0.02 and gap.passed is False


MOVE = [{"at": 2, "fault": "mdns_move", "device": "robot-1", "seconds": 6}]


def test_stays_online_counts_the_seconds_outside_online_in_its_window():
    disappear = [{"at": 1, "fault": "mdns_disappear", "device": "robot-1", "seconds": 4}]
    exp = [{"check": "stays_online", "device": "robot-1", "within": 1}]
    left = by_name(verdicts(RIG, scenario(disappear, exp), recording()), "stays ONLINE")
    assert left.passed is False and left.measured == 3.5  # OFFLINE at 2.5 s, ONLINE again at 6 s
    assert "OFFLINE at 2.50 s" in left.detail
    rec = recording()
    rec.states["robot-1"] = [(-3.0, "ONLINE")]
    kept = by_name(verdicts(RIG, scenario(disappear, exp), rec), "stays ONLINE")
    assert kept.passed is True and kept.measured == 0.0 and kept.detail == "no state change"


def test_time_to_move_runs_from_the_announcement_to_online_after_the_new_connection():
    rec = recording()  # leaves ONLINE at 2.5 s, ONLINE again at 6 s
    rec.moves[0] = MoveRecord("robot-1", announced=2.0, connected=3.0, new_bytes=500, old_bytes_after=0)
    results = verdicts(RIG, scenario(MOVE, [{"check": "moved", "device": "robot-1", "within": 3}]), rec)
    took = by_name(results, "time to move")
    assert took.measured == 4.0 and took.passed is False
    assert "after 1.00 s" in took.detail
    assert by_name(results, "new proxy").passed is True
    assert by_name(results, "old proxy").passed is True
    s = scenario(MOVE, [{"check": "moved", "device": "robot-1", "within": 3}])
    svg = html_report("cell", [ScenarioRun(s, rec, results)])
    assert svg.count('class="moved"') == 1 and "new address at 3.00 s" in svg


def test_a_move_the_bridge_never_followed_fails_every_part():
    rec = recording()
    rec.moves[0] = MoveRecord("robot-1", announced=2.0, connected=None, new_bytes=0)
    results = verdicts(RIG, scenario(MOVE, [{"check": "moved", "device": "robot-1", "within": 3}]), rec)
    took = by_name(results, "time to move")
    assert took.passed is False and took.detail == "never connected through the new proxy"
    rec.moves[0] = MoveRecord("robot-1", announced=2.0, connected=2.1, new_bytes=0, old_bytes_after=80)
    results = verdicts(RIG, scenario(MOVE, [{"check": "moved", "device": "robot-1", "within": 5}]), rec)
    assert by_name(results, "time to move").passed is True
    assert by_name(results, "new proxy").passed is False and by_name(results, "old proxy").measured == 80


def test_reports_carry_the_failures():
    s = scenario(
        [{"at": 1, "fault": "stall", "device": "robot-1", "seconds": 4}],
        [{"check": "leaves_online", "device": "robot-1", "within": 1}],
    )
    rec = recording()
    rec.faults.append((1.0, 5.0, "robot-1", "stall"))
    run = ScenarioRun(s, rec, verdicts(RIG, s, rec))
    suite = ET.fromstring(junit_xml([run])).find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    assert "**FAIL**" in markdown("cell", [run])
    html = html_report("cell", [run])
    assert html.count('<svg class="timeline"') == 1 and 'class="fault"' in html and 'class="command"' in html
