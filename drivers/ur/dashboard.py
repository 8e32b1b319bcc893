"""Dashboard server (TCP 29999): the command table, reply parsing and an asyncio client.

The Dashboard speaks newline-terminated text: one command, one reply line. Success is
recognised by the controller's documented reply wording; anything else is the controller's
reason for failing and is reported verbatim.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from linebridge.drivers.base import (
    DeviceError,
    InvalidArgument,
    MethodArg,
    MethodSpec,
    Unavailable,
    ValueType,
)
from linebridge.drivers.tasks import bounded
from linebridge.drivers.ur.netio import close_writer
from linebridge.errors import describe

GREETING = "Connected: Universal Robots Dashboard Server"
LOCAL_CONTROL_REPLY = (
    "Command is not allowed due to safety reasons, please switch robot to Remote Control "
    "mode and reconnect to port 29999"
)
MAX_LINE = 4096


@dataclass(frozen=True, slots=True)
class DashboardCommand:
    """One Dashboard command exposed as a device method.

    `command` may hold one `{arg}` placeholder filled from the method's single input; `success`
    lists reply prefixes meaning the controller accepted; queries have no `success` and return
    their parsed reply.
    """

    method: str
    command: str
    description: str
    success: tuple[str, ...] = ()
    arg: str = ""
    output: ValueType = ValueType.STRING

    def text(self, argument: str = "") -> str:
        """The command line to send (without the newline)."""
        if not self.arg:
            return self.command
        if not argument or "\n" in argument or "\r" in argument:
            raise InvalidArgument(f"{self.method}: {self.arg} must be one non-empty line")
        return self.command.format(arg=argument)


COMMANDS: tuple[DashboardCommand, ...] = (
    DashboardCommand("power_on", "power on", "power on the arm", ("Powering on",)),
    DashboardCommand("power_off", "power off", "power off the arm", ("Powering off",)),
    DashboardCommand(
        "brake_release", "brake release", "release the brakes (powers on first)", ("Brake releasing",)
    ),
    DashboardCommand(
        "load_program", "load {arg}", "load a program (.urp)", ("Loading program",), arg="program"
    ),
    DashboardCommand("play", "play", "start the loaded program", ("Starting program",)),
    DashboardCommand("pause", "pause", "pause the running program", ("Pausing program",)),
    DashboardCommand("stop_program", "stop", "stop the running program", ("Stopped",)),
    DashboardCommand(
        "unlock_protective_stop",
        "unlock protective stop",
        "release a protective stop",
        ("Protective stop releasing",),
    ),
    DashboardCommand(
        "close_safety_popup", "close safety popup", "close the safety popup", ("closing safety popup",)
    ),
    DashboardCommand("close_popup", "close popup", "close the information popup", ("closing popup",)),
    DashboardCommand("robot_mode", "robotmode", "robot mode (POWER_OFF, IDLE, RUNNING ...)"),
    DashboardCommand("safety_status", "safetystatus", "safety status (NORMAL, PROTECTIVE_STOP ...)"),
    DashboardCommand("program_state", "programState", "program state and loaded program"),
    DashboardCommand("loaded_program", "get loaded program", "path of the loaded program"),
    DashboardCommand("running", "running", "whether a program is running", output=ValueType.BOOL),
    DashboardCommand(
        "remote_control",
        "is in remote control",
        "whether the robot is in remote control",
        output=ValueType.BOOL,
    ),
)

COMMANDS_BY_METHOD = {c.method: c for c in COMMANDS}


def method_specs() -> list[MethodSpec]:
    """The Dashboard commands as device methods (INVOKE)."""
    specs = []
    for cmd in COMMANDS:
        inputs = (MethodArg(cmd.arg, ValueType.STRING),) if cmd.arg else ()
        name = "reply" if cmd.success else "value"
        specs.append(MethodSpec(cmd.method, inputs, (MethodArg(name, cmd.output),), cmd.description, cmd))
    return specs


# --- reply parsing ---------------------------------------------------------------------------


def check_success(command: DashboardCommand, reply: str) -> str:
    """Return the reply if it is the documented success wording; raise DeviceError with it otherwise."""
    if any(reply.startswith(prefix) for prefix in command.success):
        return reply
    raise DeviceError(f"dashboard '{command.command.split(' {')[0]}' failed: {reply}")


def _after_colon(reply: str, label: str) -> str:
    head, sep, tail = reply.partition(":")
    if not sep or head.strip().lower() != label:
        raise DeviceError(f"unexpected dashboard reply {reply!r}, expected '{label}: ...'")
    return tail.strip()


def parse_robot_mode(reply: str) -> str:
    """'Robotmode: RUNNING' -> 'RUNNING'."""
    return _after_colon(reply, "robotmode").upper()


def parse_safety_status(reply: str) -> str:
    """'Safetystatus: PROTECTIVE_STOP' (or older 'Safetymode: ...') -> 'PROTECTIVE_STOP'."""
    label = reply.partition(":")[0].strip().lower()
    return _after_colon(reply, "safetymode" if label == "safetymode" else "safetystatus").upper()


def parse_bool(reply: str) -> bool:
    """'true' / 'false' (is in remote control) -> bool."""
    word = reply.strip().lower()
    if word not in ("true", "false"):
        raise DeviceError(f"unexpected dashboard reply {reply!r}, expected true or false")
    return word == "true"


def parse_running(reply: str) -> bool:
    """'Program running: true' (e-Series) or 'Robot running: True' (CB) -> bool."""
    return parse_bool(reply.partition(":")[2]) if ":" in reply else parse_bool(reply)


def parse_program_state(reply: str) -> tuple[str, str]:
    """'PLAYING /programs/pick.urp' -> ('PLAYING', '/programs/pick.urp')."""
    state, _, program = reply.strip().partition(" ")
    if state.upper() not in ("STOPPED", "PLAYING", "PAUSED"):
        raise DeviceError(f"unexpected dashboard program state {reply!r}")
    return state.upper(), program.strip()


def parse_loaded_program(reply: str) -> str:
    """'Loaded program: /programs/x.urp' -> path; 'No program loaded' -> ''."""
    if reply.startswith("Loaded program:"):
        return reply.partition(":")[2].strip()
    if reply.lower().startswith("no program loaded"):
        return ""
    raise DeviceError(f"unexpected dashboard reply {reply!r}")


_QUERY_PARSERS = {
    "robotmode": parse_robot_mode,
    "safetystatus": parse_safety_status,
    "running": parse_running,
    "is in remote control": parse_bool,
    "get loaded program": parse_loaded_program,
    "programState": lambda reply: parse_program_state(reply)[0],
}


def parse_query(command: str, reply: str) -> str | bool:
    """Parse the reply of a query command into the value its signal or method returns."""
    parser = _QUERY_PARSERS.get(command)
    return reply if parser is None else parser(reply)


# --- client ----------------------------------------------------------------------------------


class DashboardClient:
    """One Dashboard connection; requests are serialised (one reply line per command)."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._owed = 0  # replies not yet read, owed to requests that were cancelled

    async def connect(self) -> None:
        """Open the connection and check the controller's greeting."""
        try:
            self._reader, self._writer = await bounded(
                asyncio.open_connection(self.host, self.port, limit=MAX_LINE), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise Unavailable(
                f"dashboard {self.host}:{self.port} unreachable: {describe(exc, self.timeout)}"
            ) from exc
        greeting = await self._read_line()
        if not greeting.startswith(GREETING):
            await self.close()
            raise DeviceError(f"{self.host}:{self.port} is not a UR Dashboard server (greeting {greeting!r})")

    async def request(self, command: str) -> str:
        """Send one command line, return the reply line."""
        async with self._lock:
            if self._writer is None:
                raise Unavailable("dashboard connection is closed")
            try:
                while self._owed:  # replies to cancelled requests are still on their way: skip them
                    await self._read_line()
                    self._owed -= 1
                self._writer.write(command.encode() + b"\n")
                await self._writer.drain()
                self._owed += 1
                reply = await self._read_line()
                self._owed -= 1
                return reply
            except OSError as exc:
                self._abort()
                raise Unavailable(f"dashboard connection broke: {describe(exc)}") from exc
            except Unavailable:
                self._abort()
                raise

    def _abort(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()

    async def query(self, command: str) -> str | bool:
        """Send a query and parse its reply."""
        return parse_query(command, await self.request(command))

    async def run(self, command: DashboardCommand, argument: str = "") -> str | bool:
        """Run a table command: check an action's success wording, or parse a query's reply."""
        reply = await self.request(command.text(argument))
        if command.success:
            return check_success(command, reply)
        return parse_query(command.command, reply)

    async def _read_line(self) -> str:
        assert self._reader is not None
        try:
            line = await bounded(self._reader.readline(), self.timeout)
        except TimeoutError:
            raise Unavailable(
                f"dashboard {self.host}:{self.port} did not answer in {self.timeout} s"
            ) from None
        except (OSError, ValueError) as exc:  # ValueError: line longer than MAX_LINE
            raise Unavailable(f"dashboard connection broke: {describe(exc)}") from exc
        if not line.endswith(b"\n"):
            raise Unavailable(f"dashboard {self.host}:{self.port} closed the connection")
        return line.decode(errors="replace").strip()

    async def close(self) -> None:
        """Close the connection; idempotent."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        await close_writer(writer)


async def wait_program_state(dashboard: DashboardClient, wanted: str, timeout: float, poll: float) -> str:
    """Poll `programState` until it is `wanted` (returns the program); DeviceError after `timeout` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state, program = parse_program_state(await dashboard.request("programState"))
        if state == wanted:
            return program
        if asyncio.get_running_loop().time() > deadline:
            safety = await dashboard.request("safetystatus")
            raise DeviceError(
                f"program {program} is {state}, not {wanted}, {timeout:g} s after the request ({safety})"
            )
        await asyncio.sleep(poll)
