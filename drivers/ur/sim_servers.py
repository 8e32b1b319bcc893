"""Protocol front-ends of the UR simulator: RTDE (30004), Dashboard (29999), secondary (30002).

Each session object serves one TCP client against the shared SimRobot. Replies use the
controller's documented wording and package formats.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from linebridge.drivers.ur import rtde
from linebridge.drivers.ur.catalog import OUTPUT_TYPES, RobotMode, SafetyMode
from linebridge.drivers.ur.dashboard import GREETING, LOCAL_CONTROL_REPLY
from linebridge.drivers.ur.kinematics import inverse, pose_error, pose_of
from linebridge.drivers.ur.rtde import NOT_FOUND, PackageType, ProtocolError, Recipe, RtdeType
from linebridge.drivers.ur.script import ScriptError, parse_statement, split_programs
from linebridge.drivers.ur.sim_robot import SimRobot, Step

log = logging.getLogger(__name__)
MAX_WRITE_BUFFER = 4 * 1024 * 1024  # a client this far behind is disconnected, as the controller does


@dataclass(frozen=True, slots=True)
class ControllerInfo:
    """Identity the simulated controller reports."""

    model: str = "UR5"
    serial: str = "20235500001"
    version: tuple[int, int, int, int] = (5, 15, 0, 118022)


class RtdeSession:
    """One RTDE client: handshake and recipe handling; tick() sends its data packages."""

    def __init__(self, robot: SimRobot, info: ControllerInfo, writer: asyncio.StreamWriter) -> None:
        self.robot, self.info, self.writer = robot, info, writer
        self.protocol = 1
        self.recipe: Recipe | None = None
        self.started = False
        self._fields: list[tuple[str, bool]] = []
        self._recipes = 0
        self._step, self._phase = 1.0, 0.0

    async def serve(self, reader: asyncio.StreamReader) -> None:
        """Read requests until the client leaves or sends something malformed."""
        framer = rtde.RtdeFramer()
        try:
            while data := await reader.read(65536):
                for package_type, payload in framer.feed(data):
                    self.handle(package_type, payload)
        except ProtocolError as exc:
            log.warning("RTDE client sent malformed data, closing: %s", exc.detail)

    def handle(self, package_type: int, payload: bytes) -> None:
        """Answer one request package."""
        write = self.writer.write
        if package_type == PackageType.REQUEST_PROTOCOL_VERSION:
            version = int.from_bytes(payload[:2], "big") if len(payload) == 2 else 0
            if version in (1, 2):
                self.protocol = version
            write(rtde.accepted(package_type, version in (1, 2)))
        elif package_type == PackageType.GET_URCONTROL_VERSION:
            write(rtde.urcontrol_version(*self.info.version))
        elif package_type == PackageType.CONTROL_PACKAGE_SETUP_OUTPUTS:
            self._setup_outputs(payload)
        elif package_type == PackageType.CONTROL_PACKAGE_SETUP_INPUTS:
            names = payload.decode("ascii", errors="replace").split(",")  # inputs are not simulated
            write(rtde.encode_package(package_type, b"\x00" + ",".join([NOT_FOUND] * len(names)).encode()))
        elif package_type == PackageType.CONTROL_PACKAGE_START:
            self.started = self.recipe is not None
            self._phase = 1.0 - self._step  # first package on the next cycle
            write(rtde.accepted(package_type, self.started))
        elif package_type == PackageType.CONTROL_PACKAGE_PAUSE:
            self.started = False
            write(rtde.accepted(package_type, True))
        elif package_type == PackageType.TEXT_MESSAGE:
            message = rtde.decode_text_message(payload)
            log.info("RTDE client says (%s): %s", message.source, message.message)

    def _setup_outputs(self, payload: bytes) -> None:
        if self.protocol >= 2:
            frequency, names = rtde.decode_setup_outputs_request(payload)
        else:  # protocol v1: names only, data at the controller rate
            frequency = 1.0 / self.robot.period
            names = [n.strip() for n in payload.decode("ascii", errors="replace").split(",") if n.strip()]
        types = [OUTPUT_TYPES[n].name if n in OUTPUT_TYPES else NOT_FOUND for n in names]
        rate = 1.0 / self.robot.period
        valid = bool(names) and NOT_FOUND not in types and 0 < frequency <= rate + 1e-9
        if valid:
            self._recipes = self._recipes % 255 + 1
            self.recipe = Recipe(self._recipes, tuple(names), tuple(RtdeType[t] for t in types))
            self._fields = [(n, OUTPUT_TYPES[n].count > 1) for n in names]
            self._step = frequency / rate
        elif names and NOT_FOUND not in types:
            self.writer.write(
                rtde.text_message(
                    f"Requested frequency {frequency:g} Hz is outside 0..{rate:g} Hz",
                    "RTDE",
                    rtde.MessageLevel.ERROR,
                )
            )
        self.writer.write(rtde.setup_outputs_reply(self._recipes if valid else 0, types))

    def tick(self) -> None:
        """Called every control cycle: send a data package when this client's rate is due."""
        if not self.started:
            return
        self._phase += self._step
        if self._phase < 1.0 - 1e-9:
            return
        self._phase -= 1.0
        values = self.robot.values
        flat: list = []
        for name, vector in self._fields:
            if vector:
                flat.extend(values[name])
            else:
                flat.append(values[name])
        self.writer.write(self.recipe.encode_package(flat))
        if self.writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("RTDE client is not reading; disconnecting it")
            self.started = False
            self.writer.close()


class DashboardSession:
    """One Dashboard client: one command line in, one reply line out."""

    def __init__(self, robot: SimRobot, info: ControllerInfo) -> None:
        self.robot, self.info = robot, info
        r = robot
        # command -> (handler taking the argument text, needs remote control)
        table: dict[str, tuple[Callable[[str], str], bool]] = {
            "power on": (lambda _: (r.power_on(), "Powering on")[1], True),
            "power off": (lambda _: (r.power_off(), "Powering off")[1], True),
            "brake release": (lambda _: (r.brake_release(), "Brake releasing")[1], True),
            "load": (self._load, True),
            "play": (lambda _: "Starting program" if r.play() else "Failed to execute: play", True),
            "pause": (lambda _: "Pausing program" if r.pause() else "Failed to execute: pause", True),
            "stop": (lambda _: (r.stop(), "Stopped")[1], True),
            "unlock protective stop": (self._unlock, True),
            "shutdown": (lambda _: (r.power_off(), "Shutting down")[1], True),
            "close safety popup": (lambda _: "closing safety popup", False),
            "close popup": (lambda _: "closing popup", False),
            "popup": (lambda _: "showing popup", False),
            "addtolog": (lambda _: "Added log message", False),
            "robotmode": (lambda _: f"Robotmode: {RobotMode.NAMES[r.robot_mode]}", False),
            "safetystatus": (lambda _: f"Safetystatus: {SafetyMode.NAMES[r.safety_mode]}", False),
            "safetymode": (lambda _: f"Safetymode: {SafetyMode.NAMES[r.safety_mode]}", False),
            "programstate": (lambda _: " ".join(r.program_state()), False),
            "get loaded program": (self._loaded, False),
            "running": (lambda _: f"Program running: {str(r.runtime_state == 2).lower()}", False),
            "is in remote control": (lambda _: str(r.remote_control).lower(), False),
            "polyscopeversion": (lambda _: f"URSoftware {self._version()} (Jan 15 2024)", False),
            "version": (lambda _: self._version(), False),
            "get robot model": (lambda _: info.model, False),
            "get serial number": (lambda _: info.serial, False),
            "quit": (lambda _: "Disconnected", False),
        }
        self._table = sorted(table.items(), key=lambda item: -len(item[0]))  # longest command first

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Greet, then answer line by line until `quit` or EOF."""
        writer.write(GREETING.encode() + b"\n")
        while line := await reader.readline():
            command = line.decode(errors="replace").strip()
            writer.write(self.reply(command).encode() + b"\n")
            await writer.drain()
            if command.lower() == "quit":
                break

    def reply(self, command: str) -> str:
        """The controller's answer to one command line."""
        lowered = command.lower()
        for name, (handler, needs_remote) in self._table:
            if lowered == name or lowered.startswith(name + " "):
                if needs_remote and not self.robot.remote_control:
                    return LOCAL_CONTROL_REPLY
                return handler(command[len(name) :].strip())
        return f"could not understand: '{command}'"

    def _version(self) -> str:
        return ".".join(str(v) for v in self.info.version)

    def _load(self, program: str) -> str:
        if self.robot.load(program):
            return f"Loading program: {program}"
        if program not in self.robot.programs:
            return f"File not found: {program}"
        return f"Error while loading program: {program}"

    def _unlock(self, _: str) -> str:
        if self.robot.unlock_protective_stop():
            return "Protective stop releasing"
        return (
            "Cannot unlock protective stop until 5s after occurrence. "
            "Always inspect cause of protective stop before unlocking"
        )

    def _loaded(self, _: str) -> str:
        program = self.robot.loaded_program
        return f"Loaded program: {program}" if program else "No program loaded"


@dataclass(slots=True)
class ScriptRecord:
    """A program received on the secondary interface and whether the controller ran it."""

    text: str
    accepted: bool
    error: str = ""


def build_steps(lines: list[str], q: list[float]) -> list[Step]:
    """Turn program lines into timed joint-space steps (IK for movel); raise ScriptError on bad syntax."""
    steps, current = [], tuple(q)
    for line in lines:
        statement = parse_statement(line)
        if statement is None:
            continue
        if statement.kind in ("stopj", "stopl"):
            break
        if statement.kind == "protective_stop":
            steps.append(Step(protective_stop=True))
            continue
        if statement.kind == "movej":
            goal = statement.target
            duration = max(abs(g - c) for g, c in zip(goal, current, strict=True)) / statement.speed
        else:
            solved = inverse(statement.target, current)
            if solved is None:
                steps.append(Step(fault="inverse kinematics failed"))
                break
            goal = tuple(solved)
            distance, angle = pose_error(pose_of(current), statement.target)
            duration = max(distance, 0.1 * angle) / statement.speed
        steps.append(Step(goal, duration))
        current = goal
    return steps


class SecondarySession:
    """One secondary-interface client: collects URScript programs and hands them to the robot.

    Simplification: a real controller also streams robot-state packages to every client of this
    port; the simulator only listens (Linebridge uses the port to deliver scripts).
    """

    def __init__(self, robot: SimRobot, records: list[ScriptRecord]) -> None:
        self.robot, self.records = robot, records

    async def serve(self, reader: asyncio.StreamReader) -> None:
        """Run every complete program as it arrives; a bare last line runs at EOF."""
        buffer = ""
        while data := await reader.read(65536):
            programs, buffer = split_programs(buffer + data.decode(errors="replace"))
            for body in programs:
                self.run(body)
        if buffer.strip() and not buffer.lstrip().startswith("def "):
            self.run([buffer.strip()])

    def run(self, body: list[str]) -> None:
        """Parse and start one program; record it either way."""
        text = "\n".join(body)
        try:
            steps = build_steps(body, self.robot.q)
        except ScriptError as exc:
            self.records.append(ScriptRecord(text, False, str(exc)))
            return
        accepted = self.robot.run_script("<script>", steps)
        self.records.append(ScriptRecord(text, accepted, "" if accepted else "robot not ready for a program"))
