"""JUnit XML for CI systems: one testsuite per scenario, one testcase per expectation."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from linebridge.hil.measure import Result, ScenarioRun


def _case(suite: ET.Element, scenario: str, result: Result) -> None:
    case = ET.SubElement(suite, "testcase", classname=f"hil.{scenario}", name=result.name, time="0")
    measured = "-" if result.measured is None else f"{result.measured:.3f}{result.unit}"
    text = f"measured {measured}, bound {result.bound or '-'}" + (
        f" ({result.detail})" if result.detail else ""
    )
    if result.passed is False:
        ET.SubElement(case, "failure", message=text, type="ExpectationFailed").text = text
    ET.SubElement(case, "system-out").text = text


def junit_xml(runs: list[ScenarioRun]) -> str:
    """The XML document for a list of scenario runs."""
    root = ET.Element("testsuites", name="linebridge-hil")
    for run in runs:
        bounded = [r for r in run.results if r.passed is not None]
        failures = sum(1 for r in bounded if r.passed is False)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=run.scenario.name,
            tests=str(len(bounded) or 1),
            failures=str(failures),
            errors="1" if run.error else "0",
            time=f"{run.wall_seconds:.3f}",
        )
        if run.error:
            case = ET.SubElement(
                suite, "testcase", classname=f"hil.{run.scenario.name}", name="run", time="0"
            )
            ET.SubElement(case, "error", message=run.error, type="ScenarioError").text = run.error
        for result in bounded:
            _case(suite, run.scenario.name, result)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(runs: list[ScenarioRun], path: Path) -> None:
    path.write_text(junit_xml(runs))
