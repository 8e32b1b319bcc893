"""Read coalescing: turn the points of each poll group into the fewest read requests allowed.

Per poll group and table, address spans are merged left to right while the merged request stays
within the protocol limit (§6.1-6.4: 2000 bits or 125 registers per read) and the unmapped gap
between two spans stays within the configured gap limit. A multi-register value is never split
across requests. Greedy left-to-right packing is optimal here: any contiguous part of a feasible
request is itself feasible, so packing each request as far as it goes never costs a request.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from linebridge.drivers.modbus.points import MapPoint, Table

MAX_READ_BITS = 2000  # §6.1, §6.2: quantity of coils / inputs 1..2000
MAX_READ_REGISTERS = 125  # §6.3, §6.4: quantity of registers 1..125


@dataclass(frozen=True, slots=True)
class Limits:
    """Request size and gap limits used by the planner."""

    max_registers: int = MAX_READ_REGISTERS
    max_bits: int = MAX_READ_BITS
    register_gap: int = 8  # unmapped registers a request may read across
    bit_gap: int = 64  # unmapped coils / inputs a request may read across

    def for_table(self, table: Table) -> tuple[int, int]:
        """(max count, gap limit) for a table."""
        if table.is_bits:
            return self.max_bits, self.bit_gap
        return self.max_registers, self.register_gap


def coalesce(spans: Iterable[tuple[int, int]], max_count: int, gap: int) -> list[tuple[int, int]]:
    """Merge (start, count) spans into the fewest (start, count) requests; spans may repeat."""
    requests: list[tuple[int, int]] = []
    start = end = -1
    for span_start, span_count in sorted(spans):
        span_end = span_start + span_count
        if span_count > max_count:
            raise ValueError(f"a value of {span_count} at {span_start} exceeds {max_count} per request")
        if start >= 0 and span_start - end <= gap and max(end, span_end) - start <= max_count:
            end = max(end, span_end)
            continue
        if start >= 0 and span_start < end:
            raise ValueError(f"span at {span_start} overlaps the request {start}..{end - 1}")
        if start >= 0:
            requests.append((start, end - start))
        start, end = span_start, span_end
    if start >= 0:
        requests.append((start, end - start))
    return requests


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request and the points decoded from its response."""

    table: Table
    start: int
    count: int
    points: tuple[MapPoint, ...]

    @property
    def label(self) -> str:
        """e.g. "HR 0-11" (addresses inclusive), "coil 7" for one address."""
        if self.count == 1:
            return f"{self.table.short} {self.start}"
        return f"{self.table.short} {self.start}-{self.start + self.count - 1}"


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """The requests one poll group sends every cycle."""

    name: str
    interval: float  # seconds
    blocks: tuple[ReadBlock, ...]

    @property
    def point_count(self) -> int:
        """Signals polled by this group (the naive one-request-per-signal count)."""
        return sum(len(b.points) for b in self.blocks)

    def describe(self) -> str:
        """One line, e.g. "fast 100 ms: HR 0-11, coil 0-3 (2 requests for 9 signals)"."""
        blocks = ", ".join(b.label for b in self.blocks)
        requests, signals = len(self.blocks), self.point_count
        return (
            f"{self.name} {self.interval * 1000:g} ms: {blocks} ({requests} request{_s(requests)} "
            f"for {signals} signal{_s(signals)})"
        )


@dataclass(frozen=True, slots=True)
class PollPlan:
    """All poll groups' requests."""

    groups: tuple[GroupPlan, ...]

    @property
    def requests_per_second(self) -> float:
        """Read requests per second the plan sends."""
        return sum(len(g.blocks) / g.interval for g in self.groups)

    @property
    def requests_per_cycle(self) -> int:
        """Requests of one cycle of every group."""
        return sum(len(g.blocks) for g in self.groups)

    @property
    def naive_requests_per_cycle(self) -> int:
        """Requests one cycle would take with one request per signal."""
        return sum(g.point_count for g in self.groups)

    def describe(self) -> str:
        """The whole plan on one line, groups separated by '; '."""
        return "; ".join(g.describe() for g in self.groups)


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def plan_blocks(points: Sequence[MapPoint], limits: Limits) -> list[ReadBlock]:
    """The read requests that cover `points`, ordered by table and address."""
    by_table: dict[Table, list[MapPoint]] = defaultdict(list)
    for point in points:
        by_table[point.table].append(point)
    blocks: list[ReadBlock] = []
    for table in Table:
        table_points = sorted(by_table.get(table, ()), key=lambda p: p.address)
        if not table_points:
            continue
        max_count, gap = limits.for_table(table)
        requests = coalesce(((p.address, p.count) for p in table_points), max_count, gap)
        index = 0
        for start, count in requests:
            members = []
            while index < len(table_points) and table_points[index].end <= start + count:
                members.append(table_points[index])
                index += 1
            blocks.append(ReadBlock(table, start, count, tuple(members)))
    return blocks


def plan_polls(points: Sequence[MapPoint], intervals: dict[str, float], limits: Limits) -> PollPlan:
    """One GroupPlan per poll group that has points; `intervals` are seconds per group name."""
    by_group: dict[str, list[MapPoint]] = defaultdict(list)
    for point in points:
        by_group[point.group].append(point)
    groups = [
        GroupPlan(name, intervals[name], tuple(plan_blocks(by_group[name], limits)))
        for name in sorted(by_group, key=lambda n: (intervals[n], n))
    ]
    return PollPlan(tuple(groups))
