"""Motion, program and safety state of the simulated six-axis robot; pure Python, no OPC UA."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class AxisProfile:
    """One joint's demo trajectory: home + amplitude * (sin(rate * theta + phase) - sin(phase)), in deg."""

    home: float
    amplitude: float
    rate: float
    phase: float


# Different rates and phases per axis so the arm never moves in lock step.
AXIS_PROFILES: tuple[AxisProfile, ...] = (
    AxisProfile(home=0.0, amplitude=60.0, rate=0.50, phase=0.0),
    AxisProfile(home=-90.0, amplitude=30.0, rate=0.70, phase=1.0),
    AxisProfile(home=90.0, amplitude=40.0, rate=0.60, phase=2.0),
    AxisProfile(home=0.0, amplitude=90.0, rate=0.90, phase=3.0),
    AxisProfile(home=90.0, amplitude=45.0, rate=1.10, phase=4.0),
    AxisProfile(home=0.0, amplitude=120.0, rate=1.30, phase=5.0),
)
AXIS_COUNT = len(AXIS_PROFILES)
HOMING_SECONDS = 1.5
AMBIENT_C = 30.0
THERMAL_TAU_S = 20.0  # first-order motor temperature lag


class ProgramState(Enum):
    """Task program state, published as its value string."""

    IDLE = "Idle"
    RUNNING = "Running"
    STOPPED = "Stopped"


class OperationalMode(Enum):
    """OPC 40010 OperationalModeEnumeration values."""

    OTHER = 0
    MANUAL_REDUCED_SPEED = 1
    MANUAL_HIGH_SPEED = 2
    AUTOMATIC = 3
    AUTOMATIC_EXTERNAL = 4


TEMPERATURE_NOISE_C = 0.2  # sensor noise (sigma) of the motor temperature readings
HI_LIMIT_C = 80.0  # the controller raises its MotorOverTemperature condition above this


@dataclass(frozen=True, slots=True)
class RobotFaults:
    """Reproducible trouble: sensor noise from `seed`; `motor_drift` heats one motor slowly and steadily."""

    seed: int = 0
    motor_drift: bool = False
    drift_axis: int = 3
    drift_after_s: float = 20.0
    drift_c_per_s: float = 0.05  # reaches the hi limit ~17 min after it starts


class RobotModel:
    """Joint positions/speeds/temperatures, the running program and the safety flags of one arm."""

    def __init__(self, faults: RobotFaults | None = None) -> None:
        self.faults = faults or RobotFaults()
        self._rng = random.Random(self.faults.seed)
        self._elapsed = 0.0
        # Start warm, where the running demo program keeps each motor (mean |speed| of a sine is 2/pi x peak).
        self._true_temperatures = [
            AMBIENT_C + 0.15 * p.amplitude * p.rate * 2 / math.pi for p in AXIS_PROFILES
        ]
        self.program_name = "demo"
        self.program_state = ProgramState.RUNNING  # the demo program runs from power-on
        self.operational_mode = OperationalMode.AUTOMATIC
        self.emergency_stop = False
        self.protective_stop = False
        self.positions = [p.home for p in AXIS_PROFILES]
        self.speeds = [0.0] * AXIS_COUNT
        self.temperatures = [AMBIENT_C] * AXIS_COUNT
        self._theta = 0.0  # trajectory phase, advances only while the program runs
        self._homing_from: list[float] | None = None
        self._homing_elapsed = 0.0

    @property
    def safety_stopped(self) -> bool:
        """True while an emergency or protective stop holds the arm."""
        return self.emergency_stop or self.protective_stop

    @property
    def homing(self) -> bool:
        """True while MoveToHome is moving the arm."""
        return self._homing_from is not None

    def step(self, dt: float, speed_override: float) -> None:
        """Advance the simulation by dt seconds at speed_override percent."""
        scale = min(max(speed_override, 0.0), 100.0) / 100.0
        if self.safety_stopped:
            self.speeds = [0.0] * AXIS_COUNT
        elif self._homing_from is not None:
            self._step_homing(dt)
        elif self.program_state is ProgramState.RUNNING:
            self._step_program(dt * scale, scale)
        else:
            self.speeds = [0.0] * AXIS_COUNT
        self._step_thermal(dt)

    def _step_program(self, dtheta: float, scale: float) -> None:
        self._theta += dtheta
        theta = self._theta
        self.positions = [
            p.home + p.amplitude * (math.sin(p.rate * theta + p.phase) - math.sin(p.phase))
            for p in AXIS_PROFILES
        ]
        self.speeds = [
            p.amplitude * p.rate * math.cos(p.rate * theta + p.phase) * scale for p in AXIS_PROFILES
        ]

    def _step_homing(self, dt: float) -> None:
        assert self._homing_from is not None
        self._homing_elapsed = min(self._homing_elapsed + dt, HOMING_SECONDS)
        s = self._homing_elapsed / HOMING_SECONDS
        blend = (1.0 - math.cos(math.pi * s)) / 2.0  # cosine blend: zero speed at both ends
        rate = math.pi / (2.0 * HOMING_SECONDS) * math.sin(math.pi * s)
        starts = self._homing_from
        self.positions = [a + (p.home - a) * blend for a, p in zip(starts, AXIS_PROFILES, strict=True)]
        self.speeds = [(p.home - a) * rate for a, p in zip(starts, AXIS_PROFILES, strict=True)]
        if s >= 1.0:
            self._homing_from = None
            self._theta = 0.0  # theta 0 is the home pose, so a restarted program continues smoothly
            self.speeds = [0.0] * AXIS_COUNT

    def _step_thermal(self, dt: float) -> None:
        k = min(dt / THERMAL_TAU_S, 1.0)
        self._elapsed += dt
        true = [
            t + (AMBIENT_C + 0.15 * abs(v) - t) * k
            for t, v in zip(self._true_temperatures, self.speeds, strict=True)
        ]
        f = self.faults
        if f.motor_drift and self._elapsed > f.drift_after_s:
            true[f.drift_axis - 1] += f.drift_c_per_s * dt  # a failing bearing or fan: steady heating
        self._true_temperatures = true
        self.temperatures = [t + self._rng.gauss(0.0, TEMPERATURE_NOISE_C) for t in true]

    @property
    def over_temperature(self) -> bool:
        """A motor is above the controller's hi limit (the MotorOverTemperature condition)."""
        return max(self._true_temperatures) > HI_LIMIT_C

    def start_program(self, name: str) -> bool:
        """Start `name`; False while a safety stop is active, homing runs or the name is empty."""
        if self.safety_stopped or self.homing or not name:
            return False
        self.program_name = name
        self.program_state = ProgramState.RUNNING
        return True

    def stop_program(self) -> None:
        """Stop the program; the arm holds its pose."""
        if self.program_state is ProgramState.RUNNING:
            self.program_state = ProgramState.STOPPED

    def move_to_home(self) -> bool:
        """Stop the program and start moving to the home pose; False during a safety stop."""
        if self.safety_stopped:
            return False
        self.stop_program()
        self._homing_from = list(self.positions)
        self._homing_elapsed = 0.0
        return True

    def trigger_protective_stop(self) -> None:
        """Latch a protective stop: motion halts and the program stops."""
        self.protective_stop = True
        self._halt()

    def reset_protective_stop(self) -> None:
        """Clear the protective stop latch; the program stays stopped until restarted."""
        self.protective_stop = False

    def set_emergency_stop(self, pressed: bool) -> None:
        """Press or release the (simulated) emergency stop button."""
        self.emergency_stop = pressed
        if pressed:
            self._halt()

    def _halt(self) -> None:
        self.stop_program()
        self._homing_from = None
        self.speeds = [0.0] * AXIS_COUNT
