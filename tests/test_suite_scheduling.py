"""The suite's own xdist scheduler: modules that share mDNS run on one worker, the rest spread by module."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from tests.conftest import shares_mdns, xdist_unit

ROOT = Path(__file__).resolve().parent.parent


def test_modules_that_announce_browse_or_run_the_demo_or_rig_share_mdns() -> None:
    sharing = ["tests/test_discovery.py", "tests/test_demo.py", "tests/test_console_demo.py"]
    sharing += ["tests/test_ur_simulator.py", "hil_tests/test_scenarios.py", "hil_tests/test_conformance.py"]
    for module in sharing:
        assert shares_mdns(ROOT / module), module
    # --no-mdns simulators, mDNS records built in memory, and a string "demo" in test data do not
    for module in ["tests/test_wire.py", "tests/test_resume_real.py", "tests/test_fuzz_txt.py"]:
        assert not shares_mdns(ROOT / module), module
    assert not shares_mdns(ROOT / "tests/test_opcua_driver.py")


def test_one_unit_of_work_holds_every_mdns_module_and_each_other_module_is_its_own() -> None:
    unit = partial(xdist_unit, ROOT)
    assert (
        unit("tests/test_demo.py::test_x") == unit("hil_tests/test_conformance.py::test_y[plc-1]") == "mdns"
    )
    assert unit("tests/test_wire.py::test_varint_matches_protobuf[1]") == "tests/test_wire.py"
    assert unit("tests/test_wire.py::test_other") == "tests/test_wire.py"
