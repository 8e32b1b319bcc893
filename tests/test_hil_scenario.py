"""The scenario loader and the rig preflight refuse bad input before any fault, naming file, entry and problem."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from linebridge.devices.catalog import DriverCatalog
from linebridge.errors import ConfigError
from linebridge.hil.rig import load_rig
from linebridge.hil.runner import load_all, preflight
from linebridge.hil.scenario import StepKind, load_scenario

HIL = Path(__file__).resolve().parent.parent / "hil_tests"
RIG = HIL / "rigs" / "simulated-cell.yaml"
GOOD = """
name: t
duration: 10
steps:
  - {at: 1, fault: stall, device: robot-1, seconds: 3}
expect:
  - {check: leaves_online, device: robot-1, within: 3}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(path, load_rig(RIG))
    message = str(info.value)
    assert str(path) in message  # the file is named
    return message


def test_a_good_scenario_loads(tmp_path):
    scenario = load_scenario(write(tmp_path, GOOD), load_rig(RIG))
    assert scenario.steps[0].fault is StepKind.STALL and scenario.steps[0].end == 4


def test_every_shipped_scenario_loads_and_every_fault_kind_is_covered():
    _, scenarios = load_all(RIG, [HIL / "scenarios"])
    kinds = {step.fault for s in scenarios for step in s.steps}
    missing = set(StepKind) - kinds
    assert not missing, f"no shipped scenario injects {sorted(missing)}"
    assert all(s.duration < 60 for s in scenarios)


def test_unknown_device_in_a_step(tmp_path):
    message = refused(tmp_path, GOOD.replace("device: robot-1, seconds", "device: robot-9, seconds"))
    assert "steps[0]" in message and "unknown device 'robot-9'" in message


def test_unknown_device_in_an_expectation(tmp_path):
    message = refused(tmp_path, GOOD.replace("device: robot-1, within", "device: plc-7, within"))
    assert "expect[0]" in message and "unknown device 'plc-7'" in message


def test_a_bound_that_ends_after_the_scenario(tmp_path):
    message = refused(tmp_path, GOOD.replace("within: 3", "within: 30"))
    assert "expect[0]" in message and "impossible time bound" in message


def test_a_fault_that_ends_after_the_scenario(tmp_path):
    message = refused(tmp_path, GOOD.replace("seconds: 3", "seconds: 30"))
    assert "steps[0]" in message and "after the scenario's duration" in message


def test_a_timed_check_without_a_bound(tmp_path):
    message = refused(tmp_path, GOOD.replace(", within: 3", ""))
    assert "expect[0]" in message and "within > 0" in message


def test_a_negative_start_names_the_field(tmp_path):
    message = refused(tmp_path, GOOD.replace("at: 1", "at: -1"))
    assert "steps" in message and "at" in message


def test_contradicting_faults_overlapping_on_one_link(tmp_path):
    text = GOOD.replace(
        "  - {at: 1, fault: stall, device: robot-1, seconds: 3}",
        "  - {at: 1, fault: stall, device: robot-1, seconds: 3}\n"
        "  - {at: 2, fault: blackhole, device: robot-1, seconds: 3, direction: down}",
    )
    message = refused(tmp_path, text)
    assert "steps[0]" in message and "steps[1]" in message and "contradict" in message


def test_two_latencies_on_one_link_contradict_but_other_directions_do_not(tmp_path):
    two = "  - {at: 1, fault: latency, device: robot-1, seconds: 3, ms: 10, direction: up}\n"
    clash = two + two.replace("ms: 10", "ms: 20")
    fine = two + two.replace("direction: up", "direction: down")
    stall = "  - {at: 1, fault: stall, device: robot-1, seconds: 3}\n"
    assert "contradict" in refused(tmp_path, GOOD.replace(stall, clash))
    assert len(load_scenario(write(tmp_path, GOOD.replace(stall, fine)), load_rig(RIG)).steps) == 2


def test_the_proxy_port_already_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rig_path = tmp_path / "rig.yaml"
        rig_path.write_text(
            RIG.read_text().replace("  - id: ur-1\n", f"  - id: ur-1\n    proxy_port: {port}\n")
        )
        with pytest.raises(ConfigError) as info:
            preflight(rig_path, load_rig(rig_path), DriverCatalog.from_entry_points())
    message = str(info.value)
    assert str(rig_path) in message and "devices[1] (ur-1)" in message and f"proxy port {port}" in message


def test_a_rig_naming_an_unknown_driver(tmp_path):
    rig_path = tmp_path / "rig.yaml"
    rig_path.write_text(RIG.read_text().replace("driver: ur", "driver: urx"))
    with pytest.raises(ConfigError, match=r"devices\[1\] \(ur-1\): unknown driver 'urx'"):
        preflight(rig_path, load_rig(rig_path), DriverCatalog.from_entry_points())


MDNS = """
name: m
duration: 12
discovered: [robot-1]
steps:
  - {at: 2, fault: mdns_move, device: robot-1, seconds: 6}
expect:
  - {check: moved, device: robot-1, within: 5}
  - {check: stays_online, device: plc-1, step: 1}
"""
DISAPPEAR = "  - {at: 1, fault: mdns_disappear, device: plc-1, seconds: 3}\n"


def mdns(discovered: str = "[robot-1, plc-1]", extra: str = DISAPPEAR) -> str:
    """The mDNS scenario with its `discovered` list and a second step replaced."""
    return MDNS.replace("[robot-1]", discovered).replace("expect:", extra + "expect:")


def test_an_mdns_scenario_loads_with_its_discovered_devices(tmp_path):
    scenario = load_scenario(write(tmp_path, mdns()), load_rig(RIG))
    assert scenario.discovered == ["robot-1", "plc-1"]
    assert [s.fault for s in scenario.steps] == [StepKind.MDNS_MOVE, StepKind.MDNS_DISAPPEAR]


def test_an_unknown_discovered_device(tmp_path):
    message = refused(tmp_path, mdns("[robot-1, plc-1, robot-7]"))
    assert "discovered[2]: unknown device 'robot-7'" in message


def test_a_device_discovered_twice(tmp_path):
    assert "discovered[1]: robot-1 is named twice" in refused(tmp_path, mdns("[robot-1, robot-1, plc-1]"))


def test_an_mdns_fault_on_a_device_that_is_not_discovered(tmp_path):
    message = refused(tmp_path, mdns("[robot-1]"))
    assert "steps[1] (mdns_disappear at 1 s): plc-1 is not announced over mDNS" in message


def test_an_mdns_fault_on_an_unknown_device(tmp_path):
    message = refused(tmp_path, mdns(extra=DISAPPEAR.replace("plc-1", "plc-9")))
    assert "steps[1]" in message and "unknown device 'plc-9'" in message


def test_disappear_and_move_overlapping_on_one_device_contradict(tmp_path):
    message = refused(tmp_path, mdns(extra=DISAPPEAR.replace("plc-1", "robot-1").replace("at: 1", "at: 4")))
    assert "steps[0] (mdns_move 2-8 s) and steps[1] (mdns_disappear 4-7 s)" in message
    assert "contradict" in message


def test_an_mdns_fault_with_no_duration(tmp_path):
    assert "seconds must be > 0" in refused(
        tmp_path, mdns(extra=DISAPPEAR.replace("seconds: 3", "seconds: 0"))
    )


def test_a_moved_check_against_a_step_that_is_no_move(tmp_path):
    message = refused(
        tmp_path,
        mdns().replace(
            "check: moved, device: robot-1, within: 5", "check: moved, device: robot-1, step: 1, within: 5"
        ),
    )
    assert "expect[0] (moved): step 1 is mdns_disappear on 'plc-1', not mdns_move on 'robot-1'" in message


def test_a_moved_check_without_a_bound_or_past_the_end(tmp_path):
    assert "within > 0" in refused(tmp_path, mdns().replace(", within: 5", ""))
    assert "impossible time bound" in refused(tmp_path, mdns().replace("within: 5", "within: 11"))


def test_a_stays_online_check_on_another_device_than_its_step(tmp_path):
    message = refused(tmp_path, mdns().replace("device: plc-1, step: 1", "device: ur-1, step: 1"))
    assert "expect[1] (stays_online): step 1 acts on 'plc-1', not on 'ur-1'" in message


def test_the_runner_refuses_to_announce_a_driver_it_cannot(tmp_path):
    rig_path = tmp_path / "rig.yaml"
    rig_path.write_text(RIG.read_text() + "  - {id: sim-1, driver: sim, endpoint: 'sim://x'}\n")
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "m.yaml").write_text(mdns("[robot-1, plc-1, sim-1]"))
    with pytest.raises(
        ConfigError, match=r"m.yaml: discovered\[2\] \(sim-1\): the runner cannot announce a 'sim'"
    ):
        load_all(rig_path, [folder])
