"""The simulated UR controller state: robot and safety modes, programs, and joint motion.

Time is the controller's own: step() advances it by one control cycle (2 ms at 500 Hz) and
every RTDE value is derived from it, so timestamps are exactly periodic and monotonic.
Simplifications: motions run at constant speed (acceleration ignored); movel follows a
joint-space path timed by the commanded TCP speed (its end pose is exact).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from linebridge.drivers.ur.catalog import OUTPUT_TYPES, RobotMode, RuntimeState, SafetyMode
from linebridge.drivers.ur.kinematics import pose_of
from linebridge.drivers.ur.rtde import RtdeType

HOME = (0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0)
GRAVITY_CURRENT = (0.0, -2.4, -1.1, -0.25, 0.02, 0.0)  # A, holding torque against gravity
SLOW_EVERY = 50  # cycles between updates of slow values (temperatures, analog inputs)


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a script program: move to `goal` (joints) in `duration` s, or fail with `fault`."""

    goal: tuple[float, ...] = ()
    duration: float = 0.0
    fault: str = ""
    protective_stop: bool = False


def _default(rtde_type: RtdeType) -> object:
    zero: object = False if rtde_type is RtdeType.BOOL else (0.0 if "d" in rtde_type.codes else 0)
    return zero if rtde_type.count == 1 else (zero,) * rtde_type.count


class SimRobot:
    """Controller state machine and arm; all methods are cheap and called from one event loop."""

    def __init__(
        self,
        rate: float = 500.0,
        unlock_delay: float = 5.0,
        transition_delay: float = 0.1,
        programs: tuple[str, ...] = ("/programs/pick.urp", "/programs/place.urp"),
    ) -> None:
        self.period = 1.0 / rate
        self.unlock_delay, self.transition_delay = unlock_delay, transition_delay
        self.programs = set(programs)
        self.time = 1000.0  # controller uptime (s); a real controller has been up a while
        self.cycle = 0
        self.q = list(HOME)
        self.robot_mode, self.safety_mode, self.runtime_state = (
            RobotMode.POWER_OFF,
            SafetyMode.NORMAL,
            RuntimeState.STOPPED,
        )
        self.remote_control = True
        self.loaded_program = ""
        self.running_program = ""
        self.digital_inputs, self.digital_outputs = 0, 0
        self._steps: deque[Step] = deque()
        self._motion: tuple[tuple[float, ...], tuple[float, ...], float, float] | None = (
            None  # start, goal, T, t
        )
        self._timers: list[tuple[float, Callable[[], None]]] = []
        self._stopped_at = 0.0
        self.values: dict[str, object] = {name: _default(t) for name, t in OUTPUT_TYPES.items()}
        self._update_arm(moving=False)
        self._update_slow()
        self._sync_modes()

    # --- the control cycle -------------------------------------------------------------------

    def step(self) -> None:
        """Advance one control cycle."""
        self.cycle += 1
        self.time += self.period
        self.values["timestamp"] = self.time
        if self._timers:
            self._run_timers()
        if self._motion is not None and self.runtime_state == RuntimeState.PLAYING:
            self._advance_motion()
        elif self._steps and self.runtime_state == RuntimeState.PLAYING:
            self._next_step()
        if self.cycle % SLOW_EVERY == 0:
            self._update_slow()

    def skip(self, cycles: int) -> None:
        """Let controller time pass without per-cycle work (the host could not keep up)."""
        self.cycle += cycles
        self.time += cycles * self.period

    def _run_timers(self) -> None:
        due = [t for t in self._timers if t[0] <= self.time]
        self._timers = [t for t in self._timers if t[0] > self.time]
        for _, action in due:
            action()
        self._sync_modes()

    def _after(self, delay: float, action: Callable[[], None]) -> None:
        self._timers.append((self.time + delay, action))

    def _advance_motion(self) -> None:
        start, goal, duration, elapsed = self._motion
        elapsed += self.period
        share = 1.0 if elapsed >= duration else elapsed / duration
        self.q = [s + (g - s) * share for s, g in zip(start, goal, strict=True)]
        if share >= 1.0:
            self._motion = None
            self._update_arm(moving=False)
            if not self._steps:
                self._end_program()
        else:
            self._motion = (start, goal, duration, elapsed)
            self._update_arm(
                moving=True, speed=[(g - s) / duration for s, g in zip(start, goal, strict=True)]
            )

    def _next_step(self) -> None:
        step = self._steps.popleft()
        if step.protective_stop:
            self.protective_stop()
        elif step.fault:
            self._end_program()
        else:
            self._motion = (tuple(self.q), step.goal, max(step.duration, self.period), 0.0)

    def _update_arm(self, moving: bool, speed: list[float] | None = None) -> None:
        qd = tuple(speed) if moving and speed else (0.0,) * 6
        powered = self.robot_mode in (RobotMode.IDLE, RobotMode.RUNNING)
        values = self.values
        values["actual_q"] = values["target_q"] = tuple(self.q)
        values["actual_qd"] = values["target_qd"] = qd
        values["actual_current"] = tuple(
            (g + 0.8 * v) if powered else 0.0 for g, v in zip(GRAVITY_CURRENT, qd, strict=True)
        )
        pose = pose_of(self.q)
        if moving:
            old = values["actual_TCP_pose"]
            values["actual_TCP_speed"] = tuple((n - o) / self.period for n, o in zip(pose, old, strict=True))
        else:
            values["actual_TCP_speed"] = (0.0,) * 6
        values["actual_TCP_pose"] = values["target_TCP_pose"] = pose

    def _update_slow(self) -> None:
        t = self.time
        warm = 1.0 if self.robot_mode == RobotMode.RUNNING else 0.3
        values = self.values
        values["joint_temperatures"] = tuple(
            27.0 + warm * (4.0 + j) + 0.05 * math.sin(t / 7 + j) for j in range(6)
        )
        values["standard_analog_input0"] = 4.0 + 0.5 * math.sin(t / 5)
        values["standard_analog_input1"] = 0.012 + 0.002 * math.cos(t / 3)
        values["actual_TCP_force"] = (
            0.3 * math.sin(t),
            0.2 * math.cos(t),
            -2.0 + 0.1 * math.sin(t / 2),
            0.0,
            0.0,
            0.0,
        )
        values["actual_main_voltage"] = 48.0
        values["tool_temperature"] = 31.0 + 0.1 * math.sin(t / 11)

    def _sync_modes(self) -> None:
        values = self.values
        values["robot_mode"] = self.robot_mode
        values["safety_mode"] = values["safety_status"] = self.safety_mode
        values["runtime_state"] = self.runtime_state
        values["speed_scaling"] = 1.0 if self.safety_mode == SafetyMode.NORMAL else 0.0
        values["actual_digital_input_bits"] = self.digital_inputs
        values["actual_digital_output_bits"] = self.digital_outputs
        powered = self.robot_mode in (RobotMode.POWER_ON, RobotMode.IDLE, RobotMode.RUNNING)
        values["actual_robot_voltage"] = 48.0 if powered else 0.0
        values["actual_robot_current"] = 1.2 if powered else 0.0
        values["joint_mode"] = (253 if self.robot_mode == RobotMode.RUNNING else 239,) * 6

    # --- controller requests (Dashboard, secondary interface, test API) ------------------------

    def power_on(self) -> None:
        """power on: POWER_OFF -> POWER_ON -> IDLE."""
        if self.robot_mode == RobotMode.POWER_OFF:
            self.robot_mode = RobotMode.POWER_ON
            self._after(self.transition_delay, self._become_idle)
            self._sync_modes()

    def _become_idle(self) -> None:
        if self.robot_mode == RobotMode.POWER_ON:
            self.robot_mode = RobotMode.IDLE

    def brake_release(self) -> None:
        """brake release: powers on first when needed, then IDLE -> RUNNING."""
        self.power_on()
        self._after(2 * self.transition_delay, self._become_running)

    def _become_running(self) -> None:
        if self.robot_mode in (RobotMode.POWER_ON, RobotMode.IDLE):
            self.robot_mode = RobotMode.RUNNING

    def power_off(self) -> None:
        """power off: stops everything."""
        self._abort()
        self.robot_mode = RobotMode.POWER_OFF
        self._sync_modes()

    def protective_stop(self) -> None:
        """Enter a protective stop (on request or from a script): motion and program stop."""
        self._abort()
        self.safety_mode = SafetyMode.PROTECTIVE_STOP
        self._stopped_at = self.time
        self._sync_modes()

    def unlock_protective_stop(self) -> bool:
        """Release a protective stop; False while inside the controller's unlock delay."""
        if (
            self.safety_mode == SafetyMode.PROTECTIVE_STOP
            and self.time - self._stopped_at < self.unlock_delay
        ):
            return False
        self.safety_mode = SafetyMode.NORMAL
        self._sync_modes()
        return True

    def load(self, program: str) -> bool:
        """Load a known program (not while one plays)."""
        if program not in self.programs or self.runtime_state == RuntimeState.PLAYING:
            return False
        self.loaded_program = program
        return True

    def play(self) -> bool:
        """Start (or resume) the loaded program; it reports PLAYING after the transition delay."""
        ready = self.robot_mode == RobotMode.RUNNING and self.safety_mode == SafetyMode.NORMAL
        if ready and self.runtime_state == RuntimeState.PAUSED:
            self._after(self.transition_delay, self._start_playing)
            return True
        if not ready or not self.loaded_program or self.runtime_state == RuntimeState.PLAYING:
            return False
        self.running_program = self.loaded_program
        self._after(self.transition_delay, self._start_playing)
        return True

    def _start_playing(self) -> None:
        if self.robot_mode == RobotMode.RUNNING and self.safety_mode == SafetyMode.NORMAL:
            self.runtime_state = RuntimeState.PLAYING

    def pause(self) -> bool:
        """Pause the running program (motion freezes where it is)."""
        if self.runtime_state != RuntimeState.PLAYING:
            return False
        self.runtime_state = RuntimeState.PAUSED
        self._update_arm(moving=False)
        self._sync_modes()
        return True

    def stop(self) -> None:
        """Stop the running program and its motion."""
        self._abort()
        self._sync_modes()

    def run_script(self, name: str, steps: list[Step]) -> bool:
        """Run a script program from the secondary interface (replaces a running one)."""
        if (
            not self.remote_control
            or self.robot_mode != RobotMode.RUNNING
            or self.safety_mode != SafetyMode.NORMAL
        ):
            return False
        self._abort()
        self._steps.extend(steps)
        self.running_program = name
        self.runtime_state = RuntimeState.PLAYING
        self._sync_modes()
        return True

    def _abort(self) -> None:
        self._steps.clear()
        self._timers = [t for t in self._timers if t[1] != self._start_playing]
        if self._motion is not None:
            self._motion = None
            self._update_arm(moving=False)
        self._end_program()

    def _end_program(self) -> None:
        self.runtime_state = RuntimeState.STOPPED
        self.running_program = ""
        self._sync_modes()

    def program_state(self) -> tuple[str, str]:
        """(STOPPED|PLAYING|PAUSED, program name) as the Dashboard reports it."""
        state = RuntimeState.NAMES.get(self.runtime_state, "STOPPED")
        state = state if state in ("PLAYING", "PAUSED") else "STOPPED"
        return state, self.running_program or self.loaded_program or "<unnamed>"
