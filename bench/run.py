"""Run the benchmark scenarios: `python -m bench.run [--quick] [--only NAME ...] [--profile]`.

Full runs write bench/results/latest.{json,md}; --quick runs write quick.{json,md}; --profile runs
(py-spy on the bridge, which perturbs the numbers) write profile.{json,md} and profiles/*.txt.
With --only, the named scenarios replace their entries in the existing file. Targets that are not
met never fail the run; a scenario that errors does (exit code 1).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import traceback
from pathlib import Path

from bench import report
from bench.common import ROOT, machine_info, say
from bench.harness import Context
from bench.procs import LOG_DIR
from bench.scenarios import ORDER, load

RESULTS = ROOT / "bench" / "results"


def output_path(args: argparse.Namespace) -> Path:
    name = "profile" if args.profile else "quick" if args.quick else "latest"
    return Path(args.out) / f"{name}.json"


async def run_one(name: str, args: argparse.Namespace) -> dict:
    ctx = Context(
        quick=args.quick,
        profile_dir=Path(args.out) / "profiles" if args.profile else None,
        profile_native=args.native,
    )
    started = time.monotonic()
    try:
        result = await load(name).run(ctx)
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0], "met": False}
    result["notes"] = ctx.notes + result.get("notes", [])
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    return result


async def main_async(args: argparse.Namespace) -> int:
    names = args.only or list(ORDER)
    path = output_path(args)
    data = report.load(path) if args.only else {"machine": {}, "scenarios": {}}
    data["machine"] = machine_info()
    data["mode"] = "profile" if args.profile else "quick" if args.quick else "full"
    failed = 0
    for index, name in enumerate(names, 1):
        say(f"[{index}/{len(names)}] {name} ({data['mode']})")
        result = await run_one(name, args)
        failed += "error" in result
        data["scenarios"][name] = result
        data["scenarios"] = {n: data["scenarios"][n] for n in ORDER if n in data["scenarios"]}
        report.write(path, data)
        say(f"[{index}/{len(names)}] {name}: " + summary(result))
    print(report.markdown(data))
    say(f"wrote {path} and {path.with_suffix('.md')}; child logs in {LOG_DIR}")
    return 1 if failed else 0


def summary(result: dict) -> str:
    if "error" in result:
        return f"ERROR {result['error']}"
    unit = result.get("unit", "")
    text = f"{report.fmt(result.get('value'), unit)} {unit}"
    if result.get("baseline") is not None:
        text += f" (baseline {report.fmt(result['baseline'], unit)}, ratio {report.fmt(result.get('ratio'), 'ratio')})"
    return text + f"; target {result.get('target')}: {'met' if result.get('met') else 'NOT met'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every scenario briefly (under 2 minutes)")
    parser.add_argument(
        "--only",
        action="append",
        choices=ORDER,
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(ORDER)}",
    )
    parser.add_argument(
        "--profile", action="store_true", help="record the bridge with py-spy during each window"
    )
    parser.add_argument(
        "--native",
        action="store_true",
        help="with --profile: C frames too (py-spy --native; pauses the bridge per sample)",
    )
    parser.add_argument("--out", default=str(RESULTS), help="results directory (default bench/results)")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
