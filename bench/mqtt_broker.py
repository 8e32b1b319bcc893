"""A real Mosquitto broker for the uplink scenarios, on a free loopback port, stopped by its pid.

The config is the tests' (tests/mqtt_broker.py): one listener on 127.0.0.1, anonymous, no
persistence, unlimited in-flight and queued messages (those two only matter for subscribers, and
the scenarios have none: the broker answers each QoS 1 PUBLISH with a PUBACK and drops it). The
broker can be started again on the same port (`uplink_replay` stops it, then brings it back).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import signal
import time
from pathlib import Path

import psutil

from bench.common import free_port


def binary() -> str:
    """The mosquitto executable (Debian package `mosquitto`)."""
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None
    )
    if found is None:
        raise RuntimeError("the uplink scenarios need a real MQTT broker: apt-get install mosquitto")
    return found


class Broker:
    """One mosquitto process in `workdir`."""

    def __init__(self, workdir: Path, port: int = 0) -> None:
        self.port = port or free_port()
        self.config = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        # As root, mosquitto would switch to the "mosquitto" user and lose access to the temp files.
        stay = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"max_inflight_messages 0\nmax_queued_messages 0\n{stay}"
        )
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 10.0) -> float:
        """Spawn it and wait until it accepts connections; returns the wall-clock time it first did."""
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                binary(), "-c", str(self.config), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log
            )
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            if self.process.returncode is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self.process.returncode}: {self.log.read_text()[-500:]}"
                )
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                listening = time.time()
                writer.close()
                return listening
            await asyncio.sleep(0.005)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout:g} s")

    def cpu_seconds(self) -> float:
        """CPU time the broker has used so far."""
        if self.process is None or self.process.returncode is not None:
            return 0.0
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    async def stop(self) -> None:
        """SIGTERM by pid, SIGKILL after 5 s; idempotent."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            await process.wait()
