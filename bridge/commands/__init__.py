"""Commands: types, resolution, gates (policy, safety, rate limits), the manager, deadman, jog and audit."""

from linebridge.commands.audit import CommandAudit
from linebridge.commands.deadman import Deadman
from linebridge.commands.gates import CommandGates
from linebridge.commands.jog import JogSession
from linebridge.commands.manager import CommandManager
from linebridge.commands.policy import DevicePolicy, PolicyBook
from linebridge.commands.ratelimit import RateLimits
from linebridge.commands.resolve import resolve
from linebridge.commands.safety import SafetyGate
from linebridge.commands.types import CommandEvent, CommandRecord, CommandSpec, CommandState

__all__ = [
    "CommandAudit",
    "CommandEvent",
    "CommandGates",
    "CommandManager",
    "CommandRecord",
    "CommandSpec",
    "CommandState",
    "Deadman",
    "DevicePolicy",
    "JogSession",
    "PolicyBook",
    "RateLimits",
    "SafetyGate",
    "resolve",
]
