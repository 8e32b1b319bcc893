"""A simulator as a child process (`linebridge sim KIND`), restartable on the ports it first got.

Shared by the HIL runner (`linebridge hil run`) and the tests that kill and restart real simulators.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit


@dataclass
class SimProcess:
    """One simulator process; `start()` again after `stop()`/`kill()` reuses the same ports."""

    kind: str  # the `linebridge sim` name: opcua-robot, modbus-plc, ur, ...
    name: str
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    endpoint: str = ""
    port_args: list[str] = field(default_factory=list)  # after the first start: the ports it got

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait for its `READY <endpoint>` line."""
        # The ports it got at first start come last, so on a restart they win over "--port 0".
        cmd = [sys.executable, "-m", "linebridge.cli", "sim", self.kind, "--name", self.name]
        cmd += [*self.args, *self.port_args]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                line = self.process.stdout.readline()
                if line.startswith("READY "):
                    self.endpoint = line.split(None, 1)[1].strip()
                    self.port_args = self._same_ports()
                    return
                if not line and self.process.poll() is not None:
                    break
        self.stop()
        raise RuntimeError(f"simulator {self.kind} for {self.name} did not become ready")

    def _same_ports(self) -> list[str]:
        """Arguments that restart the simulator on the ports it reported (--port P, or --X-port P
        for each X=P in the endpoint's query, as the UR simulator reports its three servers)."""
        parts = urlsplit(self.endpoint)
        query = parse_qsl(parts.query)
        if query:
            return [arg for key, value in query for arg in (f"--{key}-port", value)]
        return ["--port", str(parts.port)]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: the device dies without closing anything (a power cut, a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_pipe()

    def pause(self) -> None:
        """SIGSTOP: the device hangs with its sockets open."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause()`."""
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 10 s); resumes a paused process first."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
