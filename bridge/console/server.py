"""`ConsoleServer`: the console's app under uvicorn, started and stopped as an owned task."""

from __future__ import annotations

import asyncio

import uvicorn

from linebridge.console.app import build_app
from linebridge.console.config import ConsoleOptions
from linebridge.errors import ConfigError


class ConsoleServer:
    """The console on `options.listen`; start() returns its URL (the real port when 0 was asked)."""

    def __init__(self, options: ConsoleOptions) -> None:
        self.options = options
        config = uvicorn.Config(
            build_app(options),
            host=options.host,
            port=options.port,
            ssl_certfile=options.tls_cert or None,
            ssl_keyfile=options.tls_key or None,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
        )
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # the caller's loop owns signals
        self.task: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self, timeout: float = 10.0) -> str:
        """Listen; the URL of the console."""
        self.task = asyncio.create_task(self.server.serve(), name="console-http")
        async with asyncio.timeout(timeout):
            while not self.server.started:
                if self.task.done():
                    await self.task
                    raise ConfigError(f"the console could not listen on {self.options.listen}")
                await asyncio.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"{'https' if self.options.https else 'http'}://{host}:{port}/"
        return self.url

    async def wait(self) -> None:
        """Until the server ends."""
        assert self.task is not None
        await self.task

    async def stop(self) -> None:
        """Close connections and stop serving."""
        if self.task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 10)
        except TimeoutError:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
