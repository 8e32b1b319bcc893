"""Run a bridge until SIGINT/SIGTERM, then stop it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator

from linebridge.app import BridgeApp
from linebridge.config import Config
from linebridge.devices.catalog import DriverCatalog

log = logging.getLogger(__name__)


def setup_logging(level: str) -> None:
    """Log lines with time, level and logger to stderr; libraries only from WARNING up."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for noisy in ("asyncua", "zeroconf", "pymodbus"):  # their INFO chatter is per request
        logging.getLogger(noisy).setLevel(logging.WARNING)


class QuietShutdown(logging.Filter):
    """Drops connection warnings while the bridge stops: devices going offline then is expected, not news.

    Closing sessions makes drivers and their libraries warn (asyncua: BadNoSubscription for a Publish
    still in flight; a device that answers late: offline, retrying). Errors and above still pass.
    """

    SOURCES = ("linebridge.devices", "linebridge.drivers", "asyncua", "pymodbus")

    def __init__(self) -> None:
        super().__init__()
        self._handlers: list[logging.Handler] = []

    def filter(self, record: logging.LogRecord) -> bool:
        """Let errors through, and anything not from the devices, drivers or their libraries."""
        return record.levelno >= logging.ERROR or not record.name.startswith(self.SOURCES)

    def install(self) -> None:
        """Filter every root handler from now on (idempotent)."""
        for handler in logging.getLogger().handlers:
            handler.addFilter(self)  # a no-op for a handler that has it already
            if handler not in self._handlers:
                self._handlers.append(handler)

    def remove(self) -> None:
        """Let everything through again."""
        for handler in self._handlers:
            handler.removeFilter(self)
        self._handlers = []


@contextlib.contextmanager
def quiet_shutdown(quiet: QuietShutdown | None = None) -> Iterator[None]:
    """QuietShutdown on the root handlers for the duration of the block."""
    quiet = quiet or QuietShutdown()
    quiet.install()
    try:
        yield
    finally:
        quiet.remove()


def stop_event(quiet: QuietShutdown | None = None) -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (so Ctrl-C ends in an orderly stop, not a traceback).

    A plain signal handler, not loop.add_signal_handler: it runs at once in the main thread, so `quiet`
    is in place before a busy loop gets to the stop and before anything it still had queued logs.
    """
    event = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int, frame: object) -> None:
        if quiet is not None:
            quiet.install()
        with contextlib.suppress(RuntimeError):  # a second Ctrl-C after the loop has closed
            loop.call_soon_threadsafe(event.set)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    return event


async def run_bridge(
    config: Config,
    drivers: DriverCatalog,
    insecure: bool = False,
    while_running: Callable[[BridgeApp], Awaitable[None]] | None = None,
) -> None:
    """Start a bridge, run `while_running` (or wait for a signal), stop the bridge."""
    quiet = QuietShutdown()
    stop = stop_event(quiet)
    app = BridgeApp(config, drivers, insecure=insecure)
    await app.start()
    try:
        if while_running is None:
            await stop.wait()
        else:
            task = asyncio.create_task(while_running(app))
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            for t in (task, waiter):
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        log.info("stopping bridge")
        with quiet_shutdown(quiet):
            await app.stop()
