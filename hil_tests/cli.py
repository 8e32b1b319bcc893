"""`linebridge hil run RIG.yaml [--scenarios DIR] [--report DIR]`: the conformance suite, then the fault
scenarios; exit code 0 only when every expectation held."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SCENARIOS = HERE / "scenarios"


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `hil run` on the `linebridge` parser."""
    hil = sub.add_parser("hil", help="hardware-in-the-loop: conformance checks and fault scenarios on a rig")
    actions = hil.add_subparsers(dest="hil_command", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run the conformance suite and the fault scenarios on a rig")
    run.add_argument("rig", help="rig file (YAML), e.g. hil_tests/rigs/simulated-cell.yaml")
    run.add_argument(
        "--scenarios",
        action="append",
        type=Path,
        help=f"scenario folder or file (repeatable; default {DEFAULT_SCENARIOS})",
    )
    run.add_argument("--report", type=Path, help="write report.xml, report.html and report.md here")
    run.add_argument("--no-conformance", action="store_true", help="only the fault scenarios")


def conformance(rig: str, report: Path | None) -> int:
    """The pytest conformance suite against the rig (its JUnit XML next to the reports); pytest's code."""
    cmd = [sys.executable, "-m", "pytest", str(HERE / "test_conformance.py"), "--rig", rig, "-q", "--tb=line"]
    cmd += ["-p", "no:cacheprovider"]
    if report is not None:
        report.mkdir(parents=True, exist_ok=True)
        cmd += [f"--junitxml={report / 'conformance.xml'}"]
    return subprocess.call(cmd)


def run(args: argparse.Namespace) -> int:
    """Check every input, run, report, and return the exit code."""
    from linebridge.hil import runner  # noqa: PLC0415  (pulls in the bridge; only for this command)

    rig, scenarios = runner.load_all(args.rig, args.scenarios or [DEFAULT_SCENARIOS])
    code = 0 if args.no_conformance else conformance(args.rig, args.report)
    runs = runner.run_loaded(rig, scenarios, args.report)
    for r in runs:
        failed = [x.name for x in r.results if x.passed is False]
        verdict = "pass" if r.passed else "FAIL " + (r.error or ", ".join(failed))
        print(f"{r.scenario.name}: {verdict} ({r.wall_seconds:.1f} s)")
    if args.report is not None:
        print(f"reports: {args.report / 'report.html'}, report.xml, report.md")
    return 0 if code == 0 and all(r.passed for r in runs) else 1
