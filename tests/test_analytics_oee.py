"""OEE after ISO 22400-2 with hand-computed shift examples; counters; shifts; state model; config errors."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from linebridge.analytics.config import AnalyticsConfig, DeviceAnalytics
from linebridge.analytics.oee import CounterTracker, Efficiency, compute
from linebridge.analytics.shifts import ShiftCalendar
from linebridge.analytics.states import MachineState, StateClock, StateModel
from linebridge.config import parse_config
from linebridge.errors import ConfigError

S = 1_000_000_000


def _ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * S)


def test_oee_of_a_hand_computed_shift():
    # 8 h shift 06:00-14:00 with a 30 min break: PBT = 7.5 h = 27,000 s.
    # The machine ran (EXECUTE) 6 h = 21,600 s; PRI 30 s; 650 produced, 630 good.
    # A = 21600/27000 = 0.8; E = 30*650/21600 = 0.902777...; Q = 630/650 = 0.969230...
    # OEE = 0.8 * 0.902777 * 0.969230 = 0.7 (exactly: 0.8 * 19500/21600 * 630/650 = 0.7)
    eff = compute(Efficiency("m", "shift", 0, 0, apt=21_600, pbt=27_000, pri=30, pq=650, gq=630))
    assert eff.availability == pytest.approx(0.8)
    assert eff.effectiveness == pytest.approx(19_500 / 21_600)
    assert eff.quality == pytest.approx(630 / 650)
    assert eff.oee == pytest.approx(0.7)


def test_oee_with_nothing_planned_or_produced_is_zero_not_an_error():
    eff = compute(Efficiency("m", "shift", 0, 0, apt=0, pbt=0, pri=30, pq=0, gq=0))
    assert (eff.availability, eff.effectiveness, eff.quality, eff.oee) == (0, 0, 0, 0)


def test_shift_calendar_pbt_subtracts_breaks_and_maintenance():
    cfg = AnalyticsConfig.model_validate(
        {
            "shifts": [
                {
                    "name": "early",
                    "start": "06:00",
                    "end": "14:00",
                    "breaks": [{"start": "09:00", "end": "09:30"}],
                    "maintenance": [{"start": "13:00", "end": "13:15"}],
                },
                {"name": "night", "start": "22:00", "end": "06:00"},
            ]
        }
    )
    cal = ShiftCalendar(cfg.shifts)
    assert cal.planned_busy_seconds(_ns("2026-03-02T06:00"), _ns("2026-03-02T14:00")) == 8 * 3600 - 45 * 60
    # until 10:00: 4 h minus the 30 min break
    assert cal.planned_busy_seconds(_ns("2026-03-02T06:00"), _ns("2026-03-02T10:00")) == 3.5 * 3600
    assert cal.current(_ns("2026-03-02T10:00"))[0] == "early"
    assert cal.current(_ns("2026-03-03T02:00"))[0] == "night"  # crosses midnight
    assert cal.current(_ns("2026-03-02T15:00")) is None


def test_overlapping_shifts_stop_the_config_check():
    with pytest.raises(ConfigError, match="shifts 'a' and 'b' overlap"):
        parse_config(
            {
                "analytics": {
                    "shifts": [
                        {"name": "a", "start": "06:00", "end": "14:30"},
                        {"name": "b", "start": "14:00", "end": "22:00"},
                    ]
                }
            },
            env={},
        )


def test_counter_reset_is_never_negative_production():
    c = CounterTracker()
    t = np.arange(6, dtype=np.int64) * S
    assert c.update(np.array([10.0, 12.0, 15.0]), t[:3]) == 5  # first reading is the base
    assert c.update(np.array([2.0, 4.0, 4.0]), t[3:]) == 2 + 2  # reset to 0, then 2, 4
    assert c.total == 9 and c.resets == 1


def test_counter_rollover_counts_across_the_wrap():
    c = CounterTracker(counter_max=65535)
    t = np.arange(4, dtype=np.int64) * S
    c.update(np.array([65530.0]), t[:1])
    assert c.update(np.array([65534.0, 3.0, 5.0]), t[1:]) == 4 + 5 + 2
    assert c.resets == 0


def test_state_model_first_matching_rule_wins_and_clock_accumulates():
    da = DeviceAnalytics.model_validate(
        {
            "states": [
                {"state": "held", "when": [{"signal": "safety/protective_stop", "eq": True}]},
                {
                    "state": "EXECUTE",
                    "when": [
                        {"signal": "program/state", "eq": "Running"},
                        {"signal": "speed_override", "gt": 0},
                    ],
                },
                {"state": "SUSPENDED", "when": [{"signal": "program/state", "eq": "Running"}]},
            ]
        }
    )
    model = StateModel(da.states, da.default_state)
    v = {"program/state": "Running", "speed_override": 0.5, "safety/protective_stop": False}
    assert model.evaluate(v) is MachineState.EXECUTE
    assert model.evaluate({**v, "speed_override": 0.0}) is MachineState.SUSPENDED
    assert model.evaluate({**v, "safety/protective_stop": True}) is MachineState.HELD
    assert model.evaluate({}) is MachineState.IDLE
    clock = StateClock(0)
    clock.set(MachineState.EXECUTE, 10 * S)
    clock.set(MachineState.HELD, 70 * S)
    totals = clock.since_start(100 * S)
    assert (totals[MachineState.OFFLINE], totals[MachineState.EXECUTE], totals[MachineState.HELD]) == (
        10,
        60,
        30,
    )
    assert clock.window(60 * S, 80 * S)[MachineState.EXECUTE] == 10


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"name": "drift", "type": "ewma", "signal": "x", "lam": 1.5},
            r"rule 'drift': lam \(λ\) must be in \(0, 1\]",
        ),
        ({"name": "drift", "type": "ewma", "signal": "x", "lam": 0}, r"rule 'drift': lam"),
        (
            {"name": "hot", "type": "limit", "kind": "hi", "signal": "x", "limit": 1, "on_delay": -1},
            "rule 'hot': on_delay must not be negative",
        ),
        (
            {"name": "hot", "type": "limit", "kind": "hi", "signal": "x", "limit": "warm"},
            "rule 'hot': limit: .*valid number",
        ),
        (
            {"name": "sev", "type": "bit", "signal": "x", "severity": 5000},
            "rule 'sev': severity must be 1-1000",
        ),
        ({"name": "c", "type": "cusum", "signal": "x", "h": 0}, "rule 'c': h must be > 0"),
        ({"name": "s", "type": "shortage", "suspended_share": 1.5}, "rule 's': suspended_share"),
        ({"name": "q", "type": "wobble", "signal": "x"}, "rule 'q': type must be one of"),
    ],
)
def test_bad_rules_stop_the_config_check_with_one_message_naming_the_rule(rule, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_config({"analytics": {"devices": {"robot-*": {"rules": [rule]}}}}, env={})
    assert len(str(info.value).splitlines()) == 1


def test_state_clock_windows_match_a_brute_force_sum():
    rng = np.random.default_rng(4)
    clock = StateClock(0)
    changes = [(MachineState.OFFLINE, 0)]
    t = 0
    for _ in range(400):
        t += int(rng.integers(1, 50)) * S // 10
        state = MachineState(int(rng.integers(1, 9)))
        if clock.set(state, t):
            changes.append((state, t))
    end = t + 3 * S

    def brute(a: int, b: int) -> dict:
        out = dict.fromkeys(MachineState, 0.0)
        for (state, start), (_, stop) in zip(changes, [*changes[1:], (None, end)], strict=True):
            lo, hi = max(a, start), min(b, stop)
            if hi > lo:
                out[state] += (hi - lo) / 1e9
        return out

    for _ in range(50):
        a, b = sorted(int(x) for x in rng.integers(0, end, 2))
        got, want = clock.window(a, b), brute(a, b)
        assert all(got[s] == pytest.approx(want[s], abs=1e-6) for s in MachineState)
    assert clock.window(0, end) == pytest.approx(clock.since_start(end))


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"name": "r1", "type": "limit", "kind": "hi", "signal": "conveyor/sped", "limit": 1},
            r"rule 'r1': unknown signal 'conveyor/sped'",
        ),
        (
            {"name": "r2", "type": "ewma", "signal": "cell/recipe"},
            r"rule 'r2': signal 'cell/recipe' is STRING, not a number",
        ),
    ],
)
def test_rules_on_a_register_map_are_checked_at_load(rule, message):
    from linebridge.devices.catalog import DriverCatalog

    config = parse_config(
        {
            "devices": [
                {
                    "id": "plc-9",
                    "driver": "modbus",
                    "endpoint": "modbus+tcp://127.0.0.1:1502",
                    "options": {"map": "cell-plc"},
                }
            ],
            "analytics": {"devices": {"plc-*": {"rules": [rule]}}},
        },
        env={},
    )
    with pytest.raises(ConfigError, match=message) as info:
        DriverCatalog.from_entry_points().check(config, "cell.yaml")
    assert "analytics.devices['plc-*'] (device plc-9)" in str(info.value)


def test_a_reconnect_keeps_each_rules_detector_and_its_state():
    from linebridge.analytics.device import DeviceAnalyticsRuntime
    from linebridge.model import Signal, ValueType

    config = DeviceAnalytics.model_validate(
        {"rules": [{"name": "hot", "type": "limit", "kind": "hi", "signal": "t", "limit": 1.0}]}
    )
    rt = DeviceAnalyticsRuntime("m-1", config, 0)
    signals = {"t": Signal("t", ValueType.DOUBLE, alias=3)}
    rt.bind(signals, lambda rule: True)
    rt.update([3], [5.0], [S], ValueType.DOUBLE, S)
    before = rt.rules[0].detector
    assert before.active
    rt.bind({"t": Signal("t", ValueType.DOUBLE, alias=3)}, lambda rule: True)  # the device connected again
    assert rt.rules[0].detector is before and rt.rules[0].detector.active
    rt.bind(
        {"t": Signal("t", ValueType.DOUBLE, alias=4)}, lambda rule: True
    )  # a different signal: new detector
    assert rt.rules[0].detector is not before
