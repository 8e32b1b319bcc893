"""URScript for motion: build movej/movel programs, and parse them back (the simulator's side).

Only the subset Linebridge sends is understood: `movej([q1..q6], a=, v=)`,
`movel(p[x, y, z, rx, ry, rz], a=, v=)`, `stopj(a)`, `stopl(a)` and `protective_stop()`,
either as bare lines or inside one `def name(): ... end` program.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

PROGRAM_NAME = "linebridge_move"


def _num(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {value!r} in URScript")
    return f"{value:.6f}"


def _vector(values: Sequence[float]) -> str:
    return "[" + ", ".join(_num(v) for v in values) + "]"


def movej_program(joints: Sequence[float], speed: float, acceleration: float) -> str:
    """A program moving to joint positions (rad) at joint speed (rad/s) and acceleration (rad/s^2)."""
    move = f"movej({_vector(joints)}, a={_num(acceleration)}, v={_num(speed)})"
    return f"def {PROGRAM_NAME}():\n  {move}\nend\n"


def movel_program(pose: Sequence[float], speed: float, acceleration: float) -> str:
    """A program moving the TCP linearly to a pose (m, rotation vector rad) at speed (m/s)."""
    move = f"movel(p{_vector(pose)}, a={_num(acceleration)}, v={_num(speed)})"
    return f"def {PROGRAM_NAME}():\n  {move}\nend\n"


@dataclass(frozen=True, slots=True)
class Statement:
    """One parsed motion statement: kind is movej, movel, stopj, stopl or protective_stop."""

    kind: str
    target: tuple[float, ...] = ()
    speed: float = 0.0
    acceleration: float = 0.0


class ScriptError(ValueError):
    """The script is not in the understood subset."""


_CALL = re.compile(r"^(\w+)\((.*)\)$")
_DEFAULTS = {"movej": (1.05, 1.4), "movel": (0.25, 1.2)}  # URScript defaults: (v, a)


def _parse_vector(text: str, pose: bool) -> tuple[float, ...]:
    text = text.strip()
    if pose != text.startswith("p["):
        raise ScriptError(f"expected {'a pose p[...]' if pose else 'a joint list [...]'}, got {text!r}")
    body = text[2:] if pose else text[1:]
    if not body.endswith("]"):
        raise ScriptError(f"unterminated vector {text!r}")
    values = tuple(float(v) for v in body[:-1].split(","))
    if len(values) != 6 or not all(math.isfinite(v) for v in values):
        raise ScriptError(f"expected 6 finite numbers, got {text!r}")
    return values


def _split_args(args: str) -> tuple[str, dict[str, float]]:
    """Split 'p[...], a=1, v=2' into the positional target and the keyword arguments."""
    close = args.find("]")
    if close < 0:
        raise ScriptError(f"missing target vector in {args!r}")
    target, rest = args[: close + 1], args[close + 1 :]
    keywords: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ScriptError(f"unexpected positional argument {item!r}")
        keywords[key.strip()] = float(value)
    return target, keywords


def parse_statement(line: str) -> Statement | None:
    """Parse one line; None for lines outside the motion subset (comments, textmsg ...)."""
    match = _CALL.match(line.strip())
    if match is None:
        return None
    name, args = match.groups()
    try:
        if name in _DEFAULTS:
            target_text, keywords = _split_args(args)
            speed, acceleration = _DEFAULTS[name]
            return Statement(
                name,
                _parse_vector(target_text, pose=name == "movel"),
                keywords.get("v", speed),
                keywords.get("a", acceleration),
            )
        if name in ("stopj", "stopl"):
            return Statement(name, acceleration=float(args or 1.0))
        if name == "protective_stop":
            return Statement(name)
    except ValueError as exc:
        raise ScriptError(f"bad arguments in {line.strip()!r}: {exc}") from exc
    return None


def split_programs(buffer: str) -> tuple[list[list[str]], str]:
    """Cut received text into complete programs (lists of body lines) and the unfinished rest.

    A `def ...:` block is complete at its top-level `end`; any other line is a program by itself.
    """
    programs: list[list[str]] = []
    lines = buffer.split("\n")
    rest = lines.pop()  # text after the last newline is unfinished
    block: list[str] | None = None
    pending: list[str] = []
    for line in lines:
        stripped = line.strip()
        if block is None:
            if stripped.startswith("def ") and stripped.endswith(":"):
                block, pending = [], [line]
            elif stripped:
                programs.append([stripped])
            continue
        pending.append(line)
        if stripped == "end" and not line.startswith((" ", "\t")):
            programs.append(block)
            block, pending = None, []
        else:
            block.append(stripped)
    unfinished = "\n".join(pending + [rest]) if block is not None else rest
    return programs, unfinished
