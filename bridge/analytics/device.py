"""The analytics of one device: rules bound to its signals, state model, clocks, counters, detectors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from linebridge.analytics import detectors as det
from linebridge.analytics.banks import LimitBank, RateBank
from linebridge.analytics.config import (
    BitRule,
    CusumRule,
    DeviceAnalytics,
    EwmaRule,
    LimitRule,
    RateRule,
    ShortageRule,
    StaleRule,
    StuckRule,
)
from linebridge.analytics.oee import CounterTracker
from linebridge.analytics.states import MachineState, StateClock, StateModel
from linebridge.model import Signal, ValueType

log = logging.getLogger(__name__)
NUMERIC = (ValueType.DOUBLE, ValueType.INT, ValueType.BOOL)


@dataclass(slots=True)
class BoundRule:
    """A rule, its detector and the aliases it reads (the first is the main input)."""

    rule: Any
    detector: det.Detector
    aliases: list[int]
    reported: bool = False  # the active flag last reported to the alarm manager


@dataclass(slots=True)
class Slot:
    """What reads one alias: numeric detectors, bit rules, state inputs, counters, stale watchers."""

    numeric: list[BoundRule] = field(default_factory=list)
    raw: list[BoundRule] = field(default_factory=list)
    residual: list[tuple[BoundRule, int]] = field(default_factory=list)  # (rule, reference alias)
    state_path: str = ""
    counter: str = ""  # "produced", "good" or "scrap"
    stale: list[BoundRule] = field(default_factory=list)


def build_detector(rule: Any) -> det.Detector:
    """The detector for a validated rule."""
    if isinstance(rule, LimitRule):
        return det.Limit(
            rule.limit, rule.kind in ("hi", "hihi"), rule.deadband, rule.on_delay, rule.off_delay
        )
    if isinstance(rule, RateRule):
        return det.Rate(rule.max_rate, rule.on_delay)
    if isinstance(rule, StuckRule):
        return det.Stuck(rule.seconds)
    if isinstance(rule, StaleRule):
        return det.Stale(rule.seconds)
    if isinstance(rule, EwmaRule):
        return det.Ewma(rule.lam, rule.L, rule.target, rule.sigma, rule.warmup)
    if isinstance(rule, CusumRule):
        return det.Cusum(rule.k, rule.h, rule.target, rule.sigma, rule.warmup)
    if isinstance(rule, ShortageRule):
        if rule.suspended_share is not None:
            return det.Delayed(rule.on_delay)
        return det.Limit(rule.below, False, 0.0, rule.on_delay)
    if isinstance(rule, BitRule):
        return det.Bit(rule.active_value)
    raise TypeError(f"no detector for {type(rule).__name__}")


class DeviceAnalyticsRuntime:
    """Per-device runtime state; `bind` maps its config onto the device's signals."""

    def __init__(self, device_id: str, config: DeviceAnalytics, now_ns: int) -> None:
        self.device_id = device_id
        self.config = config
        self.model = StateModel(config.states, config.default_state)
        self.clock = StateClock(now_ns)
        self.inputs: dict[str, Any] = {}  # latest value of each state input, by path
        self.slots: dict[int, Slot] = {}
        self.rules: list[BoundRule] = []
        self.counters: dict[str, CounterTracker] = {}
        self.errors: list[str] = []
        self.reachable = False
        self.device_stale: list[BoundRule] = []
        self._previous: dict[str, BoundRule] = {}
        self._plans: dict[int, tuple[list[int], dict[int, np.ndarray], list]] = {}
        self.banks: list[LimitBank | RateBank] = []

    def bind(self, signals: dict[str, Signal], strict: Callable[[Any], bool]) -> None:
        """Attach every rule to its signals; a rule naming an unknown or non-numeric signal is refused."""
        # A re-description (reconnect) keeps each rule's detector: delays, baselines and raised alarms carry on.
        self._previous = {b.rule.name: b for b in self.rules}
        self.slots, self.rules, self.errors, self._plans, self.device_stale = {}, [], [], {}, []
        for path in self.model.inputs:
            if path in signals:
                self._slot(signals[path]).state_path = path
        oee = self.config.oee
        if oee is not None:
            for role in ("produced", "good", "scrap"):
                path = getattr(oee, role)
                if path and self._need(signals, path, f"oee.{role}", numeric=True):
                    self._slot(signals[path]).counter = role
                    self.counters.setdefault(role, CounterTracker(oee.counter_max))
        banked: dict[type, list] = {det.Limit: [], det.Rate: []}
        for rule in self.config.rules:
            self._bind_rule(rule, signals, strict(rule), banked)
        self.banks = [
            bank(rules)
            for bank, rules in ((LimitBank, banked[det.Limit]), (RateBank, banked[det.Rate]))
            if rules
        ]
        for bank in self.banks:
            for alias in bank.aliases:
                self._slot_alias(alias)  # so the batch plan includes the alias

    def _need(
        self, signals: dict[str, Signal], path: str, what: str, numeric: bool, loud: bool = True
    ) -> bool:
        signal = signals.get(path)
        problem = (
            f"unknown signal {path!r}"
            if signal is None
            else f"signal {path!r} is {signal.value_type.name}, not a number"
            if numeric and signal.value_type not in NUMERIC
            else ""
        )
        if problem and loud:
            self.errors.append(f"device {self.device_id}: {what}: {problem}")
            log.error("analytics: %s", self.errors[-1])
        return not problem

    def _bind_rule(self, rule: Any, signals: dict[str, Signal], loud: bool, banked: dict[type, list]) -> None:
        numeric = not isinstance(rule, BitRule)
        if not all(self._need(signals, p, f"rule {rule.name!r}", numeric, loud) for p in rule.inputs):
            return
        aliases = [signals[p].alias for p in rule.inputs]
        bound = self._previous.get(rule.name)
        if bound is None or bound.rule != rule or bound.aliases != aliases:
            bound = BoundRule(rule, build_detector(rule), aliases)
        self.rules.append(bound)
        if isinstance(rule, StaleRule):
            if bound.aliases:
                self._slot_alias(bound.aliases[0]).stale.append(bound)
            else:
                self.device_stale.append(bound)
        elif isinstance(rule, BitRule):
            self._slot_alias(bound.aliases[0]).raw.append(bound)
        elif isinstance(rule, EwmaRule | CusumRule) and len(bound.aliases) == 2:
            self._slot_alias(bound.aliases[0]).residual.append((bound, bound.aliases[1]))
        elif type(bound.detector) in banked:  # limits and rates: evaluated together per batch
            banked[type(bound.detector)].append((bound.detector, bound.aliases[0]))
        elif bound.aliases:
            self._slot_alias(bound.aliases[0]).numeric.append(bound)

    def _slot(self, signal: Signal) -> Slot:
        return self._slot_alias(signal.alias)

    def _slot_alias(self, alias: int) -> Slot:
        return self.slots.setdefault(alias, Slot())

    # -- per batch -----------------------------------------------------------------------------
    def plan(self, aliases: list[int]) -> tuple[dict[int, np.ndarray], list]:
        """Positions of each watched alias in a batch's alias column, and each bank's (rows, index matrix).

        Cached by the column's identity (drivers reuse one alias list for a fixed-shape stream).
        """
        cached = self._plans.get(id(aliases))
        if cached is not None and cached[0] is aliases:
            return cached[1], cached[2]
        arr = np.asarray(aliases, dtype=np.int64)
        order = np.argsort(arr, kind="stable")
        keys, starts = np.unique(arr[order], return_index=True)
        bounds = [*starts[1:], len(arr)]
        plan = {
            int(k): order[s:e] for k, s, e in zip(keys, starts, bounds, strict=True) if int(k) in self.slots
        }
        banks = [self._bank_plan(bank, plan) for bank in self.banks]
        if len(self._plans) > 64:
            self._plans.clear()
        self._plans[id(aliases)] = (aliases, plan, banks)  # the list is kept, so its id cannot be reused
        return plan, banks

    @staticmethod
    def _bank_plan(
        bank: LimitBank | RateBank, plan: dict[int, np.ndarray]
    ) -> tuple[list[int], np.ndarray | None]:
        rows = [r for r, a in enumerate(bank.aliases) if a in plan]
        sizes = {len(plan[bank.aliases[r]]) for r in rows}
        if len(sizes) != 1:  # rules see different sample counts: no matrix, one rule at a time
            return rows, None
        return rows, np.stack([plan[bank.aliases[r]] for r in rows])

    def update(
        self, aliases: list[int], values: list, times: list[int], value_type: ValueType | None, now_ns: int
    ) -> bool:
        """Fold one batch in; True when the machine state inputs changed."""
        for bound in self.device_stale:
            bound.detector.seen(now_ns)  # type: ignore[attr-defined]
        plan, bank_plans = self.plan(aliases)
        if not plan:
            return False
        ts = np.asarray(times, dtype=np.int64)
        column = np.asarray(values, dtype=float) if value_type in NUMERIC else None
        for bank, (rows, index) in zip(self.banks, bank_plans, strict=True):
            if not rows:
                continue
            if index is not None and column is not None:
                bank.update(index, column, ts, rows)
                continue
            for r in rows:
                idx = plan[bank.aliases[r]]
                v = column[idx] if column is not None else np.array([values[i] for i in idx], dtype=float)
                bank.detectors[r].update(v, ts[idx])
        state_changed = False
        for alias, idx in plan.items():
            slot = self.slots[alias]
            if not (
                slot.state_path or slot.stale or slot.raw or slot.numeric or slot.counter or slot.residual
            ):
                continue  # a bank's alias: done above
            t = ts[idx]
            if slot.state_path:
                self.inputs[slot.state_path] = values[idx[-1]]
                state_changed = True
            for bound in slot.stale:
                bound.detector.seen(now_ns)  # type: ignore[attr-defined]
            if slot.raw:
                picked = [values[i] for i in idx]
                for bound in slot.raw:
                    bound.detector.update_values(picked, t)  # type: ignore[attr-defined]
            if slot.numeric or slot.counter or slot.residual:
                v = column[idx] if column is not None else np.array([values[i] for i in idx], dtype=float)
                for bound in slot.numeric:
                    bound.detector.update(v, t)
                if slot.counter:
                    self.counters[slot.counter].update(v, t)
                for bound, ref in slot.residual:
                    self._residual(bound, ref, v, t, plan, column, values)
        return state_changed

    def _residual(self, bound: BoundRule, ref: int, v, t, plan, column, values) -> None:  # noqa: ANN001
        """Feed `signal - reference`: the reference's latest value in this batch (or before) is held."""
        idx = plan.get(ref)
        if idx is not None:
            last = values[idx[-1]]
            self.inputs[f"#ref{ref}"] = float(last)
        ref_value = self.inputs.get(f"#ref{ref}")
        if ref_value is not None:
            bound.detector.update(v - ref_value, t)

    def evaluate_state(self, at_ns: int) -> bool:
        """Recompute the machine state; True when it changed."""
        state = self.model.evaluate(self.inputs) if self.reachable else MachineState.OFFLINE
        return self.clock.set(state, at_ns)

    def tick(self, now_ns: int) -> None:
        """Time-based parts of the rules: delays, stuck, stale, SUSPENDED share."""
        for bound in self.rules:
            rule = bound.rule
            if isinstance(rule, ShortageRule) and rule.suspended_share is not None:
                window = int(rule.window_seconds * 1e9)
                share = (
                    self.clock.window(now_ns - window, now_ns)[MachineState.SUSPENDED] / rule.window_seconds
                )
                bound.detector.detail = f"SUSPENDED {share:.0%} of the last {rule.window_seconds:g} s"
                bound.detector._raw(share > rule.suspended_share, now_ns, now_ns)  # type: ignore[attr-defined]
            elif isinstance(bound.detector, det.Stale):
                bound.detector.offline = not self.reachable
                bound.detector.tick(now_ns)
            else:
                bound.detector.tick(now_ns)
