"""Scenario files: timed fault steps and the expectations (with time bounds) a rig must meet under them.

A scenario is YAML next to the rig files (hil_tests/scenarios/). Loading checks it against the rig
before anything starts, so a bad file stops the run with one message naming the file, the entry and the
problem, before any fault is injected.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from linebridge.config import describe_validation_error
from linebridge.errors import ConfigError
from linebridge.hil.proxy import Direction, FaultKind
from linebridge.hil.rig import Rig


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepKind(StrEnum):
    """Every fault a step can inject: the proxy's TCP faults and the ones outside TCP."""

    LATENCY = "latency"
    BANDWIDTH = "bandwidth"
    STALL = "stall"
    BLACKHOLE = "blackhole"  # half-open: one direction dead
    CORRUPT = "corrupt"
    TRUNCATE = "truncate"
    RESET = "reset"
    REFUSE = "refuse"
    MDNS_DISAPPEAR = "mdns_disappear"  # the device's announcement says goodbye
    MDNS_MOVE = "mdns_move"  # the device re-announces at a new address (a second proxy)
    BROKER_KILL = "broker_kill"  # the uplink's MQTT broker is SIGKILLed, restarted at the end
    BROKER_PAUSE = "broker_pause"  # SIGSTOP, SIGCONT at the end
    DEVICE_KILL = "device_kill"  # the device process is SIGKILLed, started again at the end
    DEVICE_RESTART = "device_restart"  # stopped (SIGTERM) and started again at once

    @property
    def proxy(self) -> FaultKind | None:
        """The proxy fault behind this step, or None for a fault outside TCP."""
        return FaultKind(self.value) if self.value in FaultKind.__members__.values() else None

    @property
    def on_device(self) -> bool:
        """True when the step names a device (every kind but the broker's)."""
        return self not in (StepKind.BROKER_KILL, StepKind.BROKER_PAUSE)

    @property
    def instant(self) -> bool:
        """True for a step that acts once and has no duration."""
        return self in (StepKind.RESET, StepKind.DEVICE_RESTART)


class Step(_Model):
    """At `at` seconds: inject `fault` on `device`'s link for `seconds`."""

    at: float = Field(ge=0)
    fault: StepKind
    device: str = ""
    seconds: float = Field(0.0, ge=0)
    direction: Direction = Direction.BOTH
    ms: float = Field(0.0, ge=0)
    jitter_ms: float = Field(0.0, ge=0)
    bytes_per_second: float = Field(0.0, ge=0)
    count: int = Field(0, ge=0)
    keep: int = -1

    @property
    def end(self) -> float:
        """When the fault is released (its start for an instant one)."""
        return self.at + self.seconds

    @property
    def link(self) -> str:
        """What the fault acts on: a device id, or `broker`."""
        return self.device if self.fault.on_device else "broker"


class Check(StrEnum):
    """What an expectation measures."""

    LEAVES_ONLINE = "leaves_online"  # detection time: fault start -> device not ONLINE
    ONLINE_AGAIN = "online_again"  # recovery time: fault end -> device ONLINE
    RATES_STEADY = "rates_steady"  # other devices' sample rates during the fault vs before it
    FAILS_FAST = "fails_fast"  # a command to the device fails with `code` within the bound
    STOP_LATENCY = "stop_latency"  # Stop accepted -> device reports the stop done
    UPLINK_INTACT = "uplink_intact"  # no lost or duplicated samples on the Sparkplug uplink
    MAX_GAP = "max_gap"  # the largest gap between samples of a device stays under the bound
    STAYS_ONLINE = (
        "stays_online"  # the device never leaves ONLINE from the fault's start to `within` s after it
    )
    MOVED = "moved"  # mdns_move: announced -> ONLINE through the new proxy (time to move), old one idle


class Expectation(_Model):
    """One expectation; `step` picks the fault it is measured against (index into steps, default 0)."""

    check: Check
    device: str = ""
    devices: list[str] = Field(default_factory=list)  # rates_steady: default every device but the faulted
    step: int = Field(0, ge=0)
    within: float = Field(0.0, ge=0)  # seconds: the bound of a timed check
    at: float = Field(0.0, ge=0)  # stop_latency: when to send the Stop
    tolerance: float = Field(0.10, gt=0, lt=1)  # rates_steady: allowed relative change
    code: str = "UNAVAILABLE"  # fails_fast: the gRPC status the command must fail with
    max_lost: int = Field(0, ge=0)
    max_duplicates: int = Field(0, ge=0)


TIMED = (
    Check.LEAVES_ONLINE,
    Check.ONLINE_AGAIN,
    Check.FAILS_FAST,
    Check.STOP_LATENCY,
    Check.MAX_GAP,
    Check.MOVED,
)
ON_STEP = (
    Check.LEAVES_ONLINE,
    Check.ONLINE_AGAIN,
    Check.FAILS_FAST,
    Check.RATES_STEADY,
    Check.STAYS_ONLINE,
    Check.MOVED,
)


class Scenario(_Model):
    """A scenario: the cell settles for `settle` s, the steps run on a clock, it ends at `duration`."""

    name: str
    description: str = ""
    duration: float = Field(gt=0, le=60)
    settle: float = Field(3.0, ge=0)  # baseline window before t = 0 (sample rates are compared to it)
    steps: list[Step] = Field(default_factory=list)
    expect: list[Expectation] = Field(min_length=1)
    # Devices the bridge finds through mDNS in this scenario: the runner announces each at its fault proxy
    # under a name unique to the run (no static entry). mDNS faults act only on these.
    discovered: list[str] = Field(default_factory=list)
    path: str = ""


def load_scenario(path: str | Path, rig: Rig) -> Scenario:
    """Read and check one scenario file against the rig (ConfigError naming file, entry and problem)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read scenario file: {exc}") from None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(str(path), exc, Scenario)) from None
    problem = first_problem(scenario, rig)
    if problem:
        raise ConfigError(f"{path}: {problem}")
    scenario.path = str(path)
    return scenario


def load_scenarios(folder: str | Path, rig: Rig) -> list[Scenario]:
    """Every `*.yaml` in a folder, sorted by name; all are checked before any runs."""
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise ConfigError(f"{folder}: no scenario files (*.yaml)")
    return [load_scenario(f, rig) for f in files]


def first_problem(scenario: Scenario, rig: Rig) -> str:
    """The first thing wrong with a scenario that its schema cannot see ('' when none)."""
    known = {d.id for d in rig.devices}
    problem = _discovered_problem(scenario.discovered, known)
    if problem:
        return problem
    for i, step in enumerate(scenario.steps):
        problem = _step_problem(step, known, scenario.duration)
        if problem:
            return f"steps[{i}] ({step.fault} at {step.at:g} s): {problem}"
        if step.fault in _MDNS and step.device not in scenario.discovered:
            return (
                f"steps[{i}] ({step.fault} at {step.at:g} s): {step.device} is not announced over mDNS "
                f"in this scenario (add it to `discovered`)"
            )
    problem = _overlap_problem(scenario.steps)
    if problem:
        return problem
    for i, exp in enumerate(scenario.expect):
        problem = _expectation_problem(exp, scenario, known)
        if problem:
            return f"expect[{i}] ({exp.check}): {problem}"
    return ""


def _discovered_problem(discovered: list[str], known: set[str]) -> str:
    for i, name in enumerate(discovered):
        if name not in known:
            return f"discovered[{i}]: unknown device {name!r} (the rig has {', '.join(sorted(known))})"
        if name in discovered[:i]:
            return f"discovered[{i}]: {name} is named twice"
    return ""


def _step_problem(step: Step, known: set[str], duration: float) -> str:
    if step.fault.on_device and step.device not in known:
        return f"unknown device {step.device!r} (the rig has {', '.join(sorted(known))})"
    if not step.fault.on_device and step.device:
        return "a broker fault names no device"
    if step.fault.instant and step.seconds:
        return "an instant fault takes no seconds"
    if not step.fault.instant and step.seconds <= 0:
        return "seconds must be > 0"
    if step.end > duration:
        return f"the fault ends at {step.end:g} s, after the scenario's duration {duration:g} s"
    if step.fault is StepKind.LATENCY and step.ms <= 0:
        return "latency needs ms > 0"
    if step.fault is StepKind.BANDWIDTH and step.bytes_per_second <= 0:
        return "bandwidth needs bytes_per_second > 0"
    if step.fault is StepKind.CORRUPT and step.count <= 0:
        return "corrupt needs count > 0"
    return ""


# Pairs that cannot act on one link and direction at once: stall keeps the bytes, blackhole throws them
# away; two faults of one kind (two latencies, two caps) give the link two different settings.
_EXCLUSIVE = {frozenset({StepKind.STALL, StepKind.BLACKHOLE})}
_PROCESS = {StepKind.DEVICE_KILL, StepKind.DEVICE_RESTART, StepKind.BROKER_KILL, StepKind.BROKER_PAUSE}
_MDNS = {StepKind.MDNS_DISAPPEAR, StepKind.MDNS_MOVE}


def _contradict(a: Step, b: Step) -> bool:
    """True when two steps overlap in time on one link and want different things of it."""
    if a.link != b.link or not (a.at < b.end and b.at < a.end or a.at == b.at):
        return False
    if {a.fault, b.fault} <= _PROCESS or {a.fault, b.fault} <= _MDNS:
        return True
    if not (a.direction.covers(b.direction) or b.direction.covers(a.direction)):
        return False
    return (a.fault is b.fault and a.fault.proxy is not None) or frozenset({a.fault, b.fault}) in _EXCLUSIVE


def _overlap_problem(steps: list[Step]) -> str:
    for i, a in enumerate(steps):
        for j in range(i + 1, len(steps)):
            b = steps[j]
            if _contradict(a, b):
                return (
                    f"steps[{i}] ({a.fault} {a.at:g}-{a.end:g} s) and steps[{j}] ({b.fault} {b.at:g}-{b.end:g} s) "
                    f"overlap on link {a.link!r} and contradict each other"
                )
    return ""


def _expectation_problem(exp: Expectation, scenario: Scenario, known: set[str]) -> str:
    for name in [exp.device, *exp.devices]:
        if name and name not in known:
            return f"unknown device {name!r} (the rig has {', '.join(sorted(known))})"
    if exp.check in TIMED and exp.within <= 0:
        return "needs a time bound: within > 0"
    if exp.check in (*ON_STEP, Check.STOP_LATENCY) and exp.check is not Check.RATES_STEADY:
        if not exp.device:
            return "names no device"
    if exp.check in ON_STEP:
        if exp.step >= len(scenario.steps):
            return f"step {exp.step} does not exist (the scenario has {len(scenario.steps)})"
        step = scenario.steps[exp.step]
        problem = _step_check_problem(exp, step)
        if problem:
            return problem
        start = step.end if exp.check in (Check.ONLINE_AGAIN, Check.STAYS_ONLINE) else step.at
        if start + exp.within > scenario.duration:
            return (
                f"impossible time bound: {exp.within:g} s after {start:g} s ends after the scenario "
                f"({scenario.duration:g} s)"
            )
    if exp.check is Check.STOP_LATENCY and exp.at + exp.within > scenario.duration:
        return f"impossible time bound: the Stop at {exp.at:g} s + {exp.within:g} s ends after the scenario"
    return ""


def _step_check_problem(exp: Expectation, step: Step) -> str:
    """An mDNS check must be measured against a fault of its kind on its device."""
    if exp.check is Check.MOVED and (step.fault is not StepKind.MDNS_MOVE or step.device != exp.device):
        return f"step {exp.step} is {step.fault} on {step.link!r}, not mdns_move on {exp.device!r}"
    if exp.check is Check.STAYS_ONLINE and step.device != exp.device:
        return f"step {exp.step} acts on {step.link!r}, not on {exp.device!r}"
    return ""
