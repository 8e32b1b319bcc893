"""A Markdown summary of a HIL run: a verdict per scenario and every measurement against its bound."""

from __future__ import annotations

from linebridge.hil.measure import Result, ScenarioRun


def _cell(result: Result) -> str:
    return "-" if result.measured is None else f"{result.measured:.3f} {result.unit}".strip()


def _verdict(result: Result) -> str:
    return {True: "pass", False: "**FAIL**", None: "info"}[result.passed]


def markdown(rig: str, runs: list[ScenarioRun]) -> str:
    """The summary text."""
    passed = sum(1 for r in runs if r.passed)
    lines = [f"# HIL report: {rig}", "", f"{passed} of {len(runs)} scenarios passed.", ""]
    lines += ["| scenario | verdict | seconds |", "|---|---|---|"]
    lines += [
        f"| {r.scenario.name} | {'pass' if r.passed else '**FAIL**'} | {r.wall_seconds:.1f} |" for r in runs
    ]
    for run in runs:
        lines += ["", f"## {run.scenario.name}", ""]
        if run.scenario.description:
            lines += [run.scenario.description, ""]
        if run.error:
            lines += [f"Error: `{run.error}`", ""]
        lines += ["| measurement | measured | bound | verdict | detail |", "|---|---|---|---|---|"]
        lines += [
            f"| {r.name} | {_cell(r)} | {r.bound or '-'} | {_verdict(r)} | {r.detail} |" for r in run.results
        ]
    return "\n".join(lines) + "\n"
