"""Child processes of a benchmark: started with a READY handshake, read for a RESULT line, stopped by pid."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.common import READY_PREFIX, RESULT_PREFIX, ROOT

LOG_DIR = Path(tempfile.gettempdir()) / f"linebridge-bench-{os.getpid()}"


@dataclass
class Child:
    """One started process, the endpoint it reported and where its stderr goes."""

    name: str
    process: asyncio.subprocess.Process
    log: Path
    endpoint: str = ""
    started_at: float = 0.0  # loop.time() just before the spawn
    ready_at: float = 0.0  # loop.time() when READY was read
    extra: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float:
        """Resident memory of the process now, in MiB."""
        return psutil.Process(self.pid).memory_info().rss / 2**20

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        times = psutil.Process(self.pid).cpu_times()
        return times.user + times.system

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class ChildFailed(RuntimeError):
    """A child exited or misbehaved; the message carries the tail of its stderr."""


class Processes:
    """The children of one scenario; every one still running is stopped when the block ends."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    async def __aenter__(self) -> Processes:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(self.stop(c) for c in self.children))

    async def start(self, name: str, *args: str, ready: bool = True, timeout: float = 60.0) -> Child:
        """Run `python ARGS...` from the repo root; with `ready`, wait for its READY line."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = LOG_DIR / f"{name}.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        loop = asyncio.get_running_loop()
        started = loop.time()
        with log.open("ab") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *args,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                limit=2**24,
            )
        child = Child(name, process, log, started_at=started)
        self.children.append(child)
        if ready:
            line = await self._line(child, READY_PREFIX, timeout)
            child.endpoint = line.removeprefix(READY_PREFIX).strip()
            child.ready_at = loop.time()
        return child

    async def result(self, child: Child, timeout: float) -> dict:
        """The JSON of the child's RESULT line; waits for the child to exit afterwards."""
        line = await self._line(child, RESULT_PREFIX, timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.process.wait(), 10)
        return json.loads(line.removeprefix(RESULT_PREFIX))

    async def finish(self, child: Child, timeout: float = 30.0) -> dict:
        """SIGTERM a serving child and return the RESULT line it prints on the way out."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGTERM)
        return await self.result(child, timeout)

    async def _line(self, child: Child, prefix: str, timeout: float) -> str:
        assert child.process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    raw = await child.process.stdout.readline()
                    if not raw:
                        code = await child.process.wait()
                        raise ChildFailed(
                            f"{child.name} exited with {code} before {prefix.strip()}:\n{child.log_tail()}"
                        )
                    line = raw.decode(errors="replace").rstrip("\n")
                    if line.startswith(prefix):
                        return line
                    child.extra.append(line)
        except TimeoutError:
            raise ChildFailed(
                f"{child.name}: no {prefix.strip()} line within {timeout:g} s:\n{child.log_tail()}"
            ) from None

    async def stop(self, child: Child, grace: float = 10.0) -> None:
        """SIGTERM the child by its pid, then SIGKILL if it has not left after `grace` seconds."""
        if child.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(child.process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                await child.process.wait()
