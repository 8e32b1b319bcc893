"""Summarise a py-spy collapsed-stack profile: `python -m bench.profile FILE [--top N]`.

Prints the functions with the largest self share (time spent in the function itself) and inclusive
share (time with it anywhere on the stack), so a missed target can be explained by where time goes.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def frame_name(frame: str, lines: bool = False) -> str:
    """'send (bridge/api/services.py:123)' -> 'send (bridge/api/services.py)' unless `lines`; paths shortened."""
    frame = frame.strip() if lines else _LINE.sub(")", frame.strip())
    head, _, tail = frame.partition(" (")
    if "site-packages/" in tail:
        tail = tail.split("site-packages/", 1)[1]
    return f"{head} ({tail}" if tail else head


def summarise(path: Path, top: int = 15, lines: bool = False) -> dict[str, list[tuple[str, float]]]:
    """Top functions by self and inclusive share of all samples."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(f, lines) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return {"self": [], "inclusive": [], "samples": []}
    share = lambda c: [(name, 100.0 * n / total) for name, n in c.most_common(top)]  # noqa: E731
    return {"self": share(self_time), "inclusive": share(inclusive), "samples": [("total", float(total))]}


def render(path: Path, top: int = 15, lines: bool = False) -> str:
    data = summarise(path, top, lines)
    lines = [f"# {path.name}: {int(data['samples'][0][1]) if data['samples'] else 0} samples", "", "self %:"]
    lines += [f"  {share:5.1f}  {name}" for name, share in data["self"]]
    lines += ["", "inclusive %:"]
    lines += [f"  {share:5.1f}  {name}" for name, share in data["inclusive"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--lines", action="store_true", help="keep line numbers (one entry per line)")
    args = parser.parse_args(argv)
    for path in args.files:
        print(render(path, args.top, args.lines), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
