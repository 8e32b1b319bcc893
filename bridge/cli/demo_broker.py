"""The demo's own Mosquitto: a free loopback port, a temporary config, stopped by its pid."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

# Where Debian/Ubuntu (/usr/sbin, not on a normal user's PATH) and Homebrew put the binary.
_PLACES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


def find_mosquitto() -> str | None:
    """The mosquitto binary on PATH or in the usual sbin directories, or None.

    LINEBRIDGE_MOSQUITTO_SEARCH (colon-separated directories) replaces that search, as it does for
    scripts/ensure_broker.sh.
    """
    search = os.environ.get("LINEBRIDGE_MOSQUITTO_SEARCH")
    if search is not None:
        return shutil.which("mosquitto", path=search)
    return shutil.which("mosquitto") or next((p for p in _PLACES if os.access(p, os.X_OK)), None)


@dataclass
class DemoBroker:
    """One running mosquitto process serving 127.0.0.1:`port`."""

    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        """The broker's mqtt:// URL on loopback."""
        return f"mqtt://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        """SIGTERM by pid, wait (bounded), SIGKILL if it lingers."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(port: int) -> str:
    # As root, mosquitto would switch to the "mosquitto" user, which may not exist or read our files.
    stay = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""
    return f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{stay}"


async def _listening(process: asyncio.subprocess.Process, port: int, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end and process.returncode is None:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return True
        await asyncio.sleep(0.05)
    return False


async def start_broker(binary: str, workdir: Path, attempts: int = 3) -> DemoBroker:
    """Start mosquitto on a free loopback port; a port taken in between gets another try."""
    log = workdir / "mosquitto.log"
    for _ in range(attempts):
        port = _free_port()
        config = workdir / "mosquitto.conf"
        config.write_text(_config(port))
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # Its own process group: a terminal's Ctrl-C must not stop the broker before the bridge.
            process = await asyncio.create_subprocess_exec(
                binary,
                "-c",
                str(config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                process_group=0,
            )
        finally:
            os.close(out)
        broker = DemoBroker(process, port, log)
        if await _listening(process, port, 10.0):
            return broker
        await broker.stop()
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
    raise OSError(f"mosquitto did not start listening: {' '.join(tail) or 'no output'}")
