"""Small helpers shared by the benchmark processes: progress output, result lines, statistics, machine facts."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULT_PREFIX = "RESULT "
READY_PREFIX = "READY "
_T0 = time.monotonic()


def say(message: str) -> None:
    """A progress line on stderr with the seconds since the runner started."""
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def emit_ready(endpoint: str) -> None:
    """The one line a helper process prints when it serves (parents wait for it)."""
    print(f"{READY_PREFIX}{endpoint}", flush=True)


def emit_result(result: dict) -> None:
    """The one line a measuring process prints with what it measured (parents parse it)."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


async def window_cpu(start: float, end: float) -> float:
    """This process's CPU use between two wall-clock times (epoch seconds), percent of one core."""
    await asyncio.sleep(max(0.0, start - time.time()))
    t0 = os.times()
    await asyncio.sleep(max(0.0, end - time.time()))
    t1 = os.times()
    return 100.0 * ((t1.user + t1.system) - (t0.user + t0.system)) / (end - start)


def free_port() -> int:
    """A free TCP port on loopback (for servers that cannot bind port 0 themselves)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(pairs: Iterable[tuple[float, int]], quantiles: Sequence[float]) -> list[float]:
    """Weighted quantiles of (value, weight) pairs: the smallest value whose cumulative weight reaches q."""
    ordered = sorted(pairs)
    total = sum(w for _, w in ordered)
    if not total:
        return [float("nan")] * len(quantiles)
    out = []
    for q in quantiles:
        goal, seen = q * total, 0
        for value, weight in ordered:
            seen += weight
            if seen >= goal:
                out.append(value)
                break
    return out


def plain_percentiles(values: Sequence[float], quantiles: Sequence[float]) -> list[float]:
    """Quantiles of unweighted values."""
    return percentiles(((v, 1) for v in values), quantiles)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info() -> dict:
    """What the numbers were measured on: CPU, cores, memory, Python and library versions, date, commit."""
    import psutil

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "grpcio": _version("grpcio"),
        "protobuf": _version("protobuf"),
        "asyncua": _version("asyncua"),
        "linebridge": _version("linebridge"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", "bridge", "drivers")),
    }
