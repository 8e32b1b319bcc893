"""Write every report of a HIL run into one folder: report.xml (JUnit), report.html, report.md."""

from __future__ import annotations

from pathlib import Path

from linebridge.hil.measure import ScenarioRun
from linebridge.hil.report_html import html_report
from linebridge.hil.report_junit import write_junit
from linebridge.hil.report_md import markdown
from linebridge.hil.rig import Rig


def write_reports(rig: Rig, runs: list[ScenarioRun], folder: Path) -> dict[str, Path]:
    """The three reports; returns their paths by format."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"junit": folder / "report.xml", "html": folder / "report.html", "markdown": folder / "report.md"}
    write_junit(runs, paths["junit"])
    paths["html"].write_text(html_report(rig.name, runs))
    paths["markdown"].write_text(markdown(rig.name, runs))
    return paths
