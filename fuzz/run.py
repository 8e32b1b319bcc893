"""Run every fuzz target (or some) for a while; crashes land in fuzz/crashes/, exit status 1 if any.

python -m fuzz.run                      # every target, 30 s each
python -m fuzz.run --seconds 120 --only modbus rtde
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = (
    "modbus",
    "rtde",
    "dashboard",
    "txt",
    "config",
    "sparkplug",
    "files",
    "client",
    "uplink",
    "opcua",
    "vda5050",
)
# libFuzzer flags: a decoder that takes 10 s for one input counts as a hang; memory capped per target.
FLAGS = ("-timeout=10", "-rss_limit_mb=2048", "-max_len=4096", "-print_final_stats=1")


def run_target(name: str, seconds: int) -> bool:
    """Fuzz one target; True when it found nothing."""
    corpus = HERE / "corpus" / name
    crashes = HERE / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(exist_ok=True)
    before = set(crashes.iterdir())
    command = [
        sys.executable,
        "-m",
        f"fuzz.fuzz_{name}",
        f"-max_total_time={seconds}",
        f"-artifact_prefix={crashes}/{name}-",
        *FLAGS,
        str(corpus),
    ]
    print(f"== fuzz {name} for {seconds} s", flush=True)
    result = subprocess.run(
        command,
        cwd=HERE.parent,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    found = sorted(set(crashes.iterdir()) - before)
    if result.returncode == 0 and not found:
        print(_stats_line(result.stderr), flush=True)
        return True
    print(result.stderr[-4000:], file=sys.stderr)
    for path in found:
        print(
            f"   new finding: {path.relative_to(HERE.parent)} "
            f"(replay: python -m fuzz.fuzz_{name} {path.relative_to(HERE.parent)})",
            file=sys.stderr,
        )
    return False


def _stats_line(stderr: str) -> str:
    """libFuzzer's final counters in one line ("stat::number_of_executed_units: 123" ...)."""
    stats = dict(
        line.removeprefix("stat::").split(":", 1)
        for line in stderr.splitlines()
        if line.startswith("stat::") and ":" in line.removeprefix("stat::")
    )
    runs = stats.get("number_of_executed_units", "?").strip()
    return f"   ok: {runs} inputs, corpus in {(HERE / 'corpus').relative_to(HERE.parent)}"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the chosen targets one after another, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30, help="fuzzing time per target (default 30)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=TARGETS,
        default=list(TARGETS),
        metavar="TARGET",
        help=f"targets to run ({', '.join(TARGETS)})",
    )
    args = parser.parse_args(argv)
    failed = [name for name in args.only if not run_target(name, args.seconds)]
    if failed:
        print(f"fuzzing found problems in: {', '.join(failed)} (inputs in fuzz/crashes/)", file=sys.stderr)
        return 1
    print("fuzzing found nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
