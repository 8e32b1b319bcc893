"""The simulated robot cell PLC's behaviour: a conveyor feeding parts, safety inputs, modes, jams.

Pure and deterministic: state changes only in step(dt) and write(), randomness comes from a seeded
generator, so a test can replay a run exactly. Values are keyed by the signal paths of
maps/cell-plc.yaml.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from linebridge.drivers.base import Value

PART_SPACING = 0.4  # m of belt between two parts
JAM_PROBABILITY = 0.03  # per part
JAM_CLEAR_TIME = (3.0, 8.0)  # s until the simulated operator clears a jam nobody acknowledged
CURTAIN_BREAKS_PER_S = 0.01  # an operator reaching in now and then
PICK_TIME = 0.3  # s a part waits at the pick position before the robot takes it
MAX_SPEED = 2.0  # m/s
AMBIENT = 25.0  # degC


class Mode:
    """Cell modes as the PLC's uint16 enum."""

    AUTO = 0
    MANUAL = 1
    MAINTENANCE = 2


ILLEGAL_VALUE = 3  # Modbus exception code the PLC answers to a value it refuses


@dataclass(slots=True)
class CellPlcModel:
    """State of one cell PLC; `values()` gives it by signal path."""

    seed: int = 0
    jam_probability: float = JAM_PROBABILITY
    running: bool = True
    jam_reset: bool = False
    light_curtain_clear: bool = True
    door_closed: bool = True
    jam: bool = False
    part_present: bool = False
    speed: float = 0.5
    mode: int = Mode.AUTO
    beacon: bool = False
    recipe: str = "PART-A"
    part_count: int = 0
    cycle_time: float = 0.0
    motor_temperature: float = AMBIENT
    uptime: float = 0.0
    distance: float = 0.0
    _travel: float = 0.0
    _since_part: float = 0.0
    _curtain_left: float = 0.0
    _pick_left: float = 0.0
    _jam_left: float = 0.0
    _tripped: bool = False  # stopped by a jam or safety stop (not by command): restart in auto
    # Fault "starve": the upstream station delivers at most one part per this many seconds (0 = no limit).
    upstream_period: float = 0.0
    _rng: random.Random | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def safety_ok(self) -> bool:
        """Light curtain clear and door closed."""
        return self.light_curtain_clear and self.door_closed

    @property
    def starved(self) -> bool:
        """Running, but no part came for 2.5 part spacings (and at least 2 s): the infeed is starved."""
        expected = PART_SPACING / self.speed if self.speed > 0 else math.inf
        return self.running and self._since_part > max(2.0, 2.5 * expected)

    def values(self) -> dict[str, Value]:
        """Every signal of the cell-plc map by path."""
        return {
            "conveyor/running": self.running,
            "conveyor/jam_reset": self.jam_reset,
            "safety/light_curtain_clear": self.light_curtain_clear,
            "safety/door_closed": self.door_closed,
            "conveyor/jam": self.jam,
            "conveyor/part_present": self.part_present,
            "conveyor/speed": self.speed,
            "cell/mode": self.mode,
            "cell/beacon": self.beacon,
            "cell/recipe": self.recipe,
            "conveyor/part_count": self.part_count,
            "cell/cycle_time": round(self.cycle_time, 2),
            "conveyor/motor_temperature": round(self.motor_temperature, 1),
            "cell/ready": self.mode == Mode.AUTO and self.safety_ok and not self.jam,
            "cell/fault": self.jam,
            "conveyor/starved": self.starved,
            "cell/uptime": int(self.uptime),
            "conveyor/distance": self.distance,
        }

    def check(self, path: str, value: Value) -> int | None:
        """The Modbus exception code the PLC answers to writing `value`, or None if it accepts."""
        if path == "conveyor/speed":
            if not isinstance(value, float) or math.isnan(value) or not 0.0 <= value <= MAX_SPEED:
                return ILLEGAL_VALUE
        elif path == "cell/mode" and value not in (Mode.AUTO, Mode.MANUAL, Mode.MAINTENANCE):
            return ILLEGAL_VALUE
        return None

    def write(self, path: str, value: Value) -> None:
        """Apply a write the PLC accepted (see check())."""
        attribute = path.split("/", 1)[1]
        if attribute in ("running", "jam_reset", "speed", "mode", "beacon", "recipe"):
            setattr(self, attribute, value)
        if attribute == "running":
            self._tripped = False  # an explicit start or stop overrides the automatic restart

    def step(self, dt: float) -> None:
        """Advance the PLC by `dt` seconds (one scan of its program)."""
        self.uptime += dt
        self._safety(dt)
        self._jam_left -= dt
        if self.jam_reset or (self.jam and self._jam_left <= 0):
            # Acknowledged (or cleared by the operator on the floor): the PLC drops the request bit.
            self.jam = self.jam_reset = False
        startable = not self.jam and self.safety_ok and self.mode != Mode.MAINTENANCE
        if self.running and not startable:
            self.running, self._tripped = False, True
        elif self._tripped and startable and self.mode == Mode.AUTO:
            self.running, self._tripped = True, False
        target = AMBIENT + 15.0 * self.speed if self.running else AMBIENT
        self.motor_temperature += (target - self.motor_temperature) * min(1.0, dt / 20.0)
        self._pick_left = max(0.0, self._pick_left - dt)
        self.part_present = self._pick_left > 0
        self._since_part += dt
        if self.running:
            self._convey(self.speed * dt)

    def _safety(self, dt: float) -> None:
        assert self._rng is not None
        self.door_closed = self.mode != Mode.MAINTENANCE
        if self._curtain_left > 0:
            self._curtain_left -= dt
        elif self._rng.random() < CURTAIN_BREAKS_PER_S * dt:
            self._curtain_left = self._rng.uniform(0.5, 2.0)
        self.light_curtain_clear = self._curtain_left <= 0

    def _convey(self, travel: float) -> None:
        assert self._rng is not None
        self.distance += travel
        self._travel += travel
        while self._travel >= PART_SPACING:
            self._travel -= PART_SPACING
            if self._since_part < self.upstream_period:
                continue  # an empty slot on the belt: the upstream station had no part ready
            self.part_count = (self.part_count + 1) & 0xFFFFFFFF
            self.cycle_time = min(self._since_part, 655.35)
            self._since_part = 0.0
            self._pick_left = PICK_TIME
            if self._rng.random() < self.jam_probability:
                self.jam, self.running, self._tripped = True, False, True
                self._jam_left = self._rng.uniform(*JAM_CLEAR_TIME)
                break
