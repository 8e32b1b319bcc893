"""Advertise a simulator (or a bridge) over mDNS, bound to chosen interfaces (loopback by default)."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence

from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

LOOPBACK = ("127.0.0.1",)


class Advertiser:
    """Registers one service instance; `await start()` then `await stop()`.

    Zeroconf is created with explicit interfaces, never on all of them: simulators and tests must
    keep multicast on loopback.
    """

    def __init__(
        self,
        service_type: str,
        instance: str,
        port: int,
        properties: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        interfaces: Sequence[str] = LOOPBACK,
    ) -> None:
        if not service_type.endswith("."):
            service_type += "."
        self.info = ServiceInfo(
            service_type,
            f"{instance}.{service_type}",
            addresses=[socket.inet_aton(host)],
            port=port,
            properties=dict(properties or {}),
            server=f"{instance.replace(' ', '-')}.local.",
        )
        self._interfaces = list(interfaces)
        self._zc: AsyncZeroconf | None = None

    async def start(self) -> None:
        """Register the service on the chosen interfaces."""
        self._zc = AsyncZeroconf(interfaces=self._interfaces)
        # allow_name_change: a second simulator with the same name must not crash the first.
        # The call returns the task that sends the announcements; await it so none is left behind.
        await (await self._zc.async_register_service(self.info, allow_name_change=True))

    async def move(self, port: int, properties: Mapping[str, str] | None = None) -> None:
        """Announce the same instance at another port (a device that moved, or an impostor); new TXT
        records when given (a device whose other ports moved too)."""
        assert self._zc is not None, "start() first"
        info = self.info
        self.info = ServiceInfo(
            info.type,
            info.name,
            addresses=info.addresses,
            port=port,
            properties=info.properties if properties is None else dict(properties),
            server=info.server,
        )
        await (await self._zc.async_update_service(self.info))

    async def stop(self) -> None:
        """Unregister the service and close zeroconf."""
        if self._zc is None:
            return
        zc, self._zc = self._zc, None
        try:
            await (await zc.async_unregister_service(self.info))
        finally:
            await zc.async_close()
