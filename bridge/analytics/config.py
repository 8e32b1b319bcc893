"""The `analytics` config section: state rules, shift calendar, OEE inputs and alarm rules, checked at load."""

from __future__ import annotations

import re
from datetime import time as dtime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from linebridge.analytics.machine_state import MachineState

RULE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Model):
    """One test on a signal; every given comparison must hold (`eq`, `ne`, `gt`, `ge`, `lt`, `le`, `in`)."""

    signal: str = Field(min_length=1)
    eq: float | bool | str | None = None
    ne: float | bool | str | None = None
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    in_: list[float | bool | str] | None = Field(None, alias="in")

    @model_validator(mode="after")
    def _some_test(self) -> Condition:
        if all(getattr(self, f) is None for f in ("eq", "ne", "gt", "ge", "lt", "le", "in_")):
            raise ValueError(f"condition on {self.signal!r} needs one of eq, ne, gt, ge, lt, le, in")
        return self


class StateRule(_Model):
    """`state` holds when every condition in `when` holds; rules are tried in order, the first wins."""

    state: MachineState
    when: list[Condition] = Field(min_length=1)

    @field_validator("state", mode="before")
    @classmethod
    def _state(cls, value: Any) -> Any:
        if isinstance(value, str) and value.upper() in MachineState.__members__:
            return MachineState[value.upper()]
        return value


class PlannedStop(_Model):
    """A planned break or planned maintenance inside a shift (local clock times)."""

    start: dtime
    end: dtime


class Shift(_Model):
    """One shift of the calendar: PBT is its length minus planned breaks and maintenance."""

    name: str = Field(min_length=1)
    start: dtime
    end: dtime  # may be earlier than start: the shift crosses midnight
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: list(DAYS)
    )
    breaks: list[PlannedStop] = Field(default_factory=list)
    maintenance: list[PlannedStop] = Field(default_factory=list)


class OeeConfig(_Model):
    """Where PQ and GQ come from, and PRI (ISO 22400-2 planned run time per item, seconds)."""

    produced: str = Field(min_length=1)  # counter signal: produced quantity (PQ)
    good: str = ""  # counter signal: good quantity (GQ); empty = scrap counter or all good
    scrap: str = ""  # counter signal: scrap quantity; GQ = PQ - scrap
    pri_seconds: float = Field(gt=0)
    # A counter that wraps at this value rolls over (0 = it never wraps; any step back is a reset).
    counter_max: int = Field(0, ge=0)


class _Rule(_Model):
    """What every alarm rule has: a name unique per device, a severity (1-1000), a message."""

    name: str
    severity: int = 500
    message: str = ""
    # The alarm is suppressed by design while the machine is in one of these states (ISA-18.2 §10).
    suppress_in: list[MachineState] = Field(default_factory=list)

    @field_validator("suppress_in", mode="before")
    @classmethod
    def _states(cls, value: Any) -> Any:
        return [
            MachineState[v.upper()] if isinstance(v, str) and v.upper() in MachineState.__members__ else v
            for v in value
        ]

    def check(self) -> None:
        """Raise ValueError for impossible parameters (the message is prefixed with the rule's name)."""
        if not RULE_NAME.fullmatch(self.name):
            raise ValueError("name must be lowercase letters, digits, '_', '.', '-' (at most 63)")
        if not 1 <= self.severity <= 1000:
            raise ValueError(
                f"severity must be 1-1000 (OPC UA Part 5 BaseEventType Severity), got {self.severity}"
            )
        for field in ("deadband", "on_delay", "off_delay", "seconds", "warmup"):
            value = getattr(self, field, None)
            if value is not None and value < 0:
                raise ValueError(f"{field} must not be negative, got {value}")

    @property
    def inputs(self) -> list[str]:
        """Signals the rule reads."""
        return []


class _SignalRule(_Rule):
    signal: str = Field(min_length=1)

    @property
    def inputs(self) -> list[str]:
        return [self.signal]


class LimitRule(_SignalRule):
    """hi / hihi / lo / lolo limit with deadband and on/off delays (ISA-18.2 §10.4)."""

    type: Literal["limit"]
    kind: Literal["hi", "hihi", "lo", "lolo"]
    limit: float
    deadband: float = 0.0
    on_delay: float = 0.0
    off_delay: float = 0.0


class RateRule(_SignalRule):
    """Rate of change above `max_rate` (signal units per second)."""

    type: Literal["rate"]
    max_rate: float
    on_delay: float = 0.0

    def check(self) -> None:
        """ValueError unless max_rate is positive."""
        super().check()
        if self.max_rate <= 0:
            raise ValueError(f"max_rate must be > 0, got {self.max_rate}")


class StuckRule(_SignalRule):
    """The value has not changed for `seconds`."""

    type: Literal["stuck"]
    seconds: float

    def check(self) -> None:
        """ValueError unless seconds is non-zero."""
        super().check()
        if self.seconds == 0:
            raise ValueError("seconds must be > 0")


class StaleRule(_Rule):
    """No sample of `signal` (or of the device when empty) for `seconds`, or the device is offline."""

    type: Literal["stale"]
    signal: str = ""
    seconds: float

    def check(self) -> None:
        """ValueError unless seconds is non-zero."""
        super().check()
        if self.seconds == 0:
            raise ValueError("seconds must be > 0")

    @property
    def inputs(self) -> list[str]:
        """The signal the rule watches (none: the whole device)."""
        return [self.signal] if self.signal else []


class _DriftRule(_Rule):
    """Drift detector input: one signal, or the residual `signal - reference`; in-control mean and sigma."""

    signal: str = Field(min_length=1)
    reference: str = ""
    target: float | None = None  # in-control mean; estimated from `warmup` samples when not given
    sigma: float | None = None
    warmup: int = 50

    def check(self) -> None:
        super().check()
        if self.sigma is not None and self.sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")
        if (self.target is None or self.sigma is None) and self.warmup < 10:
            raise ValueError(f"warmup must be >= 10 samples to estimate target and sigma, got {self.warmup}")

    @property
    def inputs(self) -> list[str]:
        return [self.signal, self.reference] if self.reference else [self.signal]


class EwmaRule(_DriftRule):
    """EWMA control chart (Roberts 1959; Lucas & Saccucci 1990): smoothing `lam` in (0, 1], limit width L."""

    type: Literal["ewma"]
    lam: float = 0.2
    L: float = 3.0  # noqa: N815 - the chart's name for the limit width

    def check(self) -> None:
        """ValueError unless the smoothing lam is in (0, 1] and the limit width is valid."""
        super().check()
        if not 0 < self.lam <= 1:
            raise ValueError(f"lam (λ) must be in (0, 1], got {self.lam}")
        if self.L <= 0:
            raise ValueError(f"L must be > 0, got {self.L}")


class CusumRule(_DriftRule):
    """Tabular CUSUM (Page 1954; Montgomery §9.1): reference value k and decision interval h, in sigmas."""

    type: Literal["cusum"]
    k: float = 0.5
    h: float = 5.0

    def check(self) -> None:
        """ValueError unless k and h are valid."""
        super().check()
        if self.k < 0:
            raise ValueError(f"k must not be negative, got {self.k}")
        if self.h <= 0:
            raise ValueError(f"h must be > 0, got {self.h}")


class ShortageRule(_Rule):
    """Supply shortage: `signal` below `below` for `on_delay`, or SUSPENDED above `suspended_share` of the window."""

    type: Literal["shortage"]
    signal: str = ""
    below: float | None = None
    on_delay: float = 0.0
    suspended_share: float | None = None
    window_seconds: float = 600.0

    def check(self) -> None:
        """ValueError unless exactly one of signal + below and suspended_share is given, in range."""
        super().check()
        if (self.signal and self.below is not None) == (self.suspended_share is not None):
            raise ValueError("give either signal + below, or suspended_share")
        if self.suspended_share is not None and not 0 < self.suspended_share <= 1:
            raise ValueError(f"suspended_share must be in (0, 1], got {self.suspended_share}")
        if self.window_seconds <= 0:
            raise ValueError(f"window_seconds must be > 0, got {self.window_seconds}")

    @property
    def inputs(self) -> list[str]:
        """The signal the rule watches, if any."""
        return [self.signal] if self.signal else []


class BitRule(_SignalRule):
    """A device alarm bit: active while the signal is true (or equals `active_value`)."""

    type: Literal["bit"]
    active_value: float | bool | str = True


Rule = Annotated[
    LimitRule | RateRule | StuckRule | StaleRule | EwmaRule | CusumRule | ShortageRule | BitRule,
    Field(discriminator="type"),
]
_RULE_TYPES = {
    "limit": LimitRule,
    "rate": RateRule,
    "stuck": StuckRule,
    "stale": StaleRule,
    "ewma": EwmaRule,
    "cusum": CusumRule,
    "shortage": ShortageRule,
    "bit": BitRule,
}


def parse_rule(raw: Any, index: int) -> Any:
    """Validate one rule; any problem becomes one message naming the rule (its name, or its position)."""
    name = raw.get("name") if isinstance(raw, dict) else None
    label = f"rule {name!r}" if isinstance(name, str) and name else f"rule #{index + 1}"
    if not isinstance(raw, dict):
        raise ValueError(f"{label}: expected a mapping")
    cls = _RULE_TYPES.get(raw.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"{label}: type must be one of {', '.join(_RULE_TYPES)}, got {raw.get('type')!r}")
    try:
        rule = cls.model_validate(raw)
        rule.check()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{label}: {where}: {first['msg']} (got {first.get('input')!r})") from None
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None
    return rule


class DeviceAnalytics(_Model):
    """Analytics of the devices whose id matches the key glob: states, OEE inputs, alarm rules."""

    # Use the driver's shipped state rules and alarm rules (OPC 40010 robot, UR, the cell PLC map).
    defaults: bool = True
    states: list[StateRule] = Field(default_factory=list)
    # State when no rule matches (and the device is reachable).
    default_state: MachineState = MachineState.IDLE
    oee: OeeConfig | None = None
    rules: list[Rule] = Field(default_factory=list)

    @field_validator("default_state", mode="before")
    @classmethod
    def _default_state(cls, value: Any) -> Any:
        return (
            MachineState[value.upper()]
            if isinstance(value, str) and value.upper() in MachineState.__members__
            else value
        )

    @field_validator("rules", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("expected a list of rules")
        rules = [parse_rule(raw, i) for i, raw in enumerate(value)]
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"rule {rule.name!r}: the name appears more than once")
            seen.add(rule.name)
        return rules


class AnalyticsConfig(_Model):
    """Machine states, OEE (ISO 22400-2) and alarms, computed per batch at the edge."""

    enabled: bool = True
    # How often times in state, OEE and delayed alarms are re-evaluated and published.
    publish_interval_seconds: float = Field(1.0, gt=0, le=60)
    shifts: list[Shift] = Field(default_factory=list)
    devices: dict[str, DeviceAnalytics] = Field(default_factory=dict)
    # Alarm events kept for AlarmHistory.
    history: int = Field(10_000, ge=10)

    @field_validator("shifts")
    @classmethod
    def _no_overlap(cls, shifts: list[Shift]) -> list[Shift]:
        from linebridge.analytics.shifts import check_overlaps

        check_overlaps(shifts)
        return shifts


def check_signals(analytics: DeviceAnalytics, signals: dict[str, Any]) -> str | None:
    """The first rule (or state condition, or OEE counter) naming a signal the device lacks or of the wrong
    type, as one message; None when all are fine. `signals`: path -> ValueType (numbers 1-3 are numeric)."""

    def problem(path: str, numeric: bool) -> str | None:
        kind = signals.get(path)
        if kind is None:
            return f"unknown signal {path!r}"
        if numeric and int(kind) not in (1, 2, 3):
            return f"signal {path!r} is {getattr(kind, 'name', kind)}, not a number"
        return None

    for rule in analytics.rules:
        for path in rule.inputs:
            found = problem(path, numeric=rule.type != "bit")
            if found:
                return f"rule {rule.name!r}: {found}"
    for i, state_rule in enumerate(analytics.states):
        for cond in state_rule.when:
            found = problem(cond.signal, numeric=False)
            if found:
                return f"states[{i}] ({state_rule.state.name}): {found}"
    if analytics.oee is not None:
        for role in ("produced", "good", "scrap"):
            path = getattr(analytics.oee, role)
            found = problem(path, numeric=True) if path else None
            if found:
                return f"oee.{role}: {found}"
    return None
