"""Child processes a test starts (the demo and everything it starts) end with the test, whatever happened."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterable

import psutil

_names = itertools.count(1)


def unique_suffix(prefix: str) -> str:
    """A device-name suffix no other test of this run uses (pid: other workers; counter: this one).

    A test that fails may leave a simulator that announced itself on loopback mDNS for a few seconds;
    the next test must not mistake it for one of its own."""
    return f"{prefix}{psutil.Process().pid}x{next(_names)}"


def descendants(pid: int) -> list[int]:
    """Every process below `pid` now (an empty list once it is gone)."""
    with contextlib.suppress(psutil.Error):
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    return []


def alive(pids: list[int]) -> list[int]:
    """The pids among `pids` still running (a zombie is not)."""
    running = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                running.append(pid)
    return running


async def kill_tree(process: asyncio.subprocess.Process, known: Iterable[int] = ()) -> None:
    """Kill `process` and every process below it (and `known`, listed while the parent still ran), then reap it.

    Children first: a child that inherited the parent's stdout or stderr (the demo's web console does)
    keeps that pipe open, and on Python 3.11 `Process.wait()` returns only once the pipes close, so
    killing the parent alone would leave the test waiting for ever."""
    victims = []
    for pid in sorted(set(known) | set(descendants(process.pid))):
        with contextlib.suppress(psutil.Error):
            victims.append(psutil.Process(pid))
    for victim in victims:
        with contextlib.suppress(psutil.Error):
            victim.kill()
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    psutil.wait_procs(victims, timeout=10)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), 30)
