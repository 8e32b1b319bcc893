"""The read coalescing planner: property tests (every address once, limits, optimal count) and examples."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linebridge.drivers.modbus.planner import (
    MAX_READ_BITS,
    MAX_READ_REGISTERS,
    Limits,
    coalesce,
    plan_blocks,
    plan_polls,
)
from linebridge.drivers.modbus.points import Table
from linebridge.drivers.modbus.regmap import load_map


@st.composite
def span_sets(draw: st.DrawFn) -> tuple[list[tuple[int, int]], int, int]:
    """Non-overlapping (start, count) spans, some repeated (bits sharing a register), plus limits."""
    max_count = draw(st.sampled_from([1, 2, 4, 8, 16, 125, 2000]) | st.integers(1, 130))
    gap = draw(st.integers(0, 40))
    spans: list[tuple[int, int]] = []
    address = draw(st.integers(0, 50))
    for _ in range(draw(st.integers(0, 40))):
        count = draw(st.integers(1, min(max_count, 8)))
        if address + count > 65536:
            break
        spans.append((address, count))
        if count == 1 and draw(st.booleans()):
            spans.append((address, 1))  # a second bit entry on the same register
        address += count + draw(st.integers(0, 60))
    return draw(st.permutations(spans)), max_count, gap


def _feasible(spans: list[tuple[int, int]], max_count: int, gap: int) -> bool:
    start, end = spans[0][0], spans[-1][0] + spans[-1][1]
    gaps_ok = all(b[0] - (a[0] + a[1]) <= gap for a, b in zip(spans, spans[1:], strict=False))
    return end - start <= max_count and gaps_ok


def _optimal_count(spans: list[tuple[int, int]], max_count: int, gap: int) -> int:
    """Brute-force minimum number of requests over contiguous partitions (dynamic programming)."""
    ordered = sorted(set(spans))
    best = [0] + [10**9] * len(ordered)
    for i in range(1, len(ordered) + 1):
        for j in range(i):
            if _feasible(ordered[j:i], max_count, gap):
                best[i] = min(best[i], best[j] + 1)
    return best[-1]


@settings(max_examples=300, deadline=None)
@given(span_sets())
def test_every_address_once_within_limits_and_fewest_requests(
    case: tuple[list[tuple[int, int]], int, int],
) -> None:
    spans, max_count, gap = case
    requests = coalesce(spans, max_count, gap)
    covered: list[int] = [a for start, count in requests for a in range(start, start + count)]
    assert len(covered) == len(set(covered)), "an address is read twice"
    mapped = {a for start, count in spans for a in range(start, start + count)}
    assert mapped <= set(covered), "a mapped address is not read"
    for start, count in requests:
        assert 1 <= count <= max_count
        assert start + count <= 65536
    for span_start, span_count in spans:  # never split a value across requests
        holders = [r for r in requests if r[0] <= span_start and span_start + span_count <= r[0] + r[1]]
        assert len(holders) == 1
    for start, count in requests:  # an unmapped run inside a request never exceeds the gap limit
        run = 0
        for address in range(start, start + count):
            run = 0 if address in mapped else run + 1
            assert run <= gap
    assert len(requests) == _optimal_count(spans, max_count, gap) if spans else requests == []


def test_protocol_limits() -> None:
    assert coalesce([(a, 1) for a in range(MAX_READ_BITS)], MAX_READ_BITS, 0) == [(0, MAX_READ_BITS)]
    assert coalesce([(a, 1) for a in range(MAX_READ_BITS + 1)], MAX_READ_BITS, 0) == [
        (0, MAX_READ_BITS),
        (MAX_READ_BITS, 1),
    ]
    assert coalesce([(a, 1) for a in range(126)], MAX_READ_REGISTERS, 0) == [(0, 125), (125, 1)]
    # A float (2 registers) straddling the 125 boundary moves whole into the next request.
    assert coalesce([(0, 124), (124, 2)], MAX_READ_REGISTERS, 0) == [(0, 124), (124, 2)]


def test_gap_limit() -> None:
    spans = [(0, 2), (5, 2), (20, 1)]
    assert coalesce(spans, 125, 3) == [(0, 7), (20, 1)]
    assert coalesce(spans, 125, 2) == [(0, 2), (5, 2), (20, 1)]
    assert coalesce(spans, 125, 13) == [(0, 21)]


def test_a_value_larger_than_a_request_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        coalesce([(0, 10)], 8, 0)


def _points(*entries: dict[str, Any], groups: dict[str, int] | None = None) -> Any:
    return load_map({"poll_groups": groups or {"default": 1000}, "points": list(entries)})


def test_blocks_hold_their_points_and_tables_stay_apart() -> None:
    regmap = _points(
        {"path": "a", "table": "holding_register", "address": 0, "type": "float32"},
        {"path": "b", "table": "holding_register", "address": 4, "type": "uint16"},
        {"path": "c", "table": "holding_register", "address": 40, "type": "uint16"},
        {"path": "d", "table": "input_register", "address": 1, "type": "uint16"},
        {"path": "e", "table": "coil", "address": 3, "type": "bool"},
        {"path": "f", "table": "coil", "address": 9, "type": "bool"},
    )
    blocks = plan_blocks(regmap.compiled, Limits(register_gap=8, bit_gap=64))
    assert [(b.table, b.start, b.count, [p.path for p in b.points]) for b in blocks] == [
        (Table.COIL, 3, 7, ["e", "f"]),
        (Table.INPUT_REGISTER, 1, 1, ["d"]),
        (Table.HOLDING_REGISTER, 0, 5, ["a", "b"]),
        (Table.HOLDING_REGISTER, 40, 1, ["c"]),
    ]


def test_poll_groups_are_planned_separately_and_described() -> None:
    regmap = _points(
        {"path": "a", "table": "holding_register", "address": 0, "type": "uint16", "poll": "fast"},
        {"path": "b", "table": "holding_register", "address": 1, "type": "uint16", "poll": "slow"},
        {"path": "c", "table": "holding_register", "address": 2, "type": "uint16", "poll": "fast"},
        groups={"slow": 1000, "fast": 100},
    )
    intervals = {n: regmap.group_interval(n) for n in regmap.poll_groups}
    plan = plan_polls(regmap.compiled, intervals, Limits())
    assert [g.name for g in plan.groups] == ["fast", "slow"]
    assert plan.describe() == (
        "fast 100 ms: HR 0-2 (1 request for 2 signals); slow 1000 ms: HR 1 (1 request for 1 signal)"
    )
    assert plan.requests_per_cycle == 2 and plan.naive_requests_per_cycle == 3
    assert plan.requests_per_second == pytest.approx(11.0)


def test_cell_plc_plan() -> None:
    regmap = load_map("cell-plc")
    plan = plan_polls(regmap.compiled, {n: regmap.group_interval(n) for n in regmap.poll_groups}, Limits())
    assert plan.requests_per_cycle == 6
    assert plan.naive_requests_per_cycle == len(regmap.compiled) == 18
    assert "fast 250 ms: coil 0-1, DI 0-3, IR 0-4, HR 0-1" in plan.describe()


def test_bits_sharing_a_register_are_read_once() -> None:
    regmap = _points(
        *(
            {"path": f"s/{b}", "table": "input_register", "address": 3, "type": "bit", "bit": b}
            for b in range(4)
        )
    )
    blocks = plan_blocks(regmap.compiled, Limits())
    assert [(b.start, b.count, len(b.points)) for b in blocks] == [(3, 1, 4)]
