"""An asyncio RTDE client: handshake (protocol v2, controller version, output recipe), start, data.

One instance is one TCP connection. Any malformed input raises ProtocolError (an Unavailable)
and closes the connection; the caller decides what to do next.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence

from linebridge.drivers.base import DeviceError, Unavailable
from linebridge.drivers.tasks import bounded
from linebridge.drivers.ur import rtde
from linebridge.drivers.ur.netio import close_writer
from linebridge.drivers.ur.rtde import NOT_FOUND, PackageType, ProtocolError, Recipe, RtdeType
from linebridge.errors import describe

_READ_SIZE = 65536
_LOG_LEVELS = {
    rtde.MessageLevel.EXCEPTION: logging.ERROR,
    rtde.MessageLevel.ERROR: logging.ERROR,
    rtde.MessageLevel.WARNING: logging.WARNING,
    rtde.MessageLevel.INFO: logging.INFO,
}


class RecipeError(DeviceError):
    """The controller refused an output recipe (unknown variable names, rate too high)."""

    def __init__(self, message: str, not_found: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.not_found = tuple(not_found)


class RtdeClient:
    """One RTDE connection to a controller."""

    def __init__(
        self, host: str, port: int, timeout: float = 5.0, logger: logging.Logger | None = None
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.log = logger or logging.getLogger(__name__)
        self.text_messages = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._framer = rtde.RtdeFramer()
        self._queue: deque[tuple[int, bytes]] = deque()

    @property
    def where(self) -> str:
        """'RTDE host:port', for messages."""
        return f"RTDE {self.host}:{self.port}"

    async def connect(self) -> None:
        """Open the TCP connection."""
        try:
            self._reader, self._writer = await bounded(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise Unavailable(f"{self.where} unreachable: {describe(exc, self.timeout)}") from exc

    async def negotiate(self, version: int = rtde.PROTOCOL_VERSION) -> None:
        """Request the protocol version; raise DeviceError when the controller refuses it."""
        payload = await self._request(
            rtde.request_protocol_version(version), PackageType.REQUEST_PROTOCOL_VERSION
        )
        if not rtde.decode_accepted(payload):
            raise DeviceError(f"{self.where} refused RTDE protocol version {version}")

    async def controller_version(self) -> tuple[int, int, int, int]:
        """The controller's (major, minor, bugfix, build)."""
        payload = await self._request(rtde.get_urcontrol_version(), PackageType.GET_URCONTROL_VERSION)
        return rtde.decode_urcontrol_version(payload)

    async def setup_outputs(self, names: Sequence[str], frequency: float) -> tuple[int, list[str]]:
        """Send an output recipe; return the raw answer (recipe id, type names incl. NOT_FOUND)."""
        request = rtde.setup_outputs(list(names), frequency)
        payload = await self._request(request, PackageType.CONTROL_PACKAGE_SETUP_OUTPUTS)
        recipe_id, type_names = rtde.decode_setup_outputs_reply(payload)
        if len(type_names) != len(names):
            raise ProtocolError(f"recipe answer has {len(type_names)} types for {len(names)} variables")
        return recipe_id, type_names

    async def recipe(
        self, names: Sequence[str], frequency: float, expected: dict[str, RtdeType] | None = None
    ) -> Recipe:
        """Set up an output recipe and check every answered type (against `expected` when given)."""
        recipe_id, type_names = await self.setup_outputs(names, frequency)
        missing = [n for n, t in zip(names, type_names, strict=True) if t == NOT_FOUND]
        if missing:
            raise RecipeError(f"{self.where} does not know RTDE variable(s) {', '.join(missing)}", missing)
        types = tuple(rtde.parse_type(t) for t in type_names)
        for name, answered in zip(names, types, strict=True):
            wanted = (expected or {}).get(name)
            if wanted is not None and answered is not wanted:
                raise ProtocolError(
                    f"recipe answer types {name} as {answered.name}, documented as {wanted.name}"
                )
        if recipe_id == 0:
            raise RecipeError(f"{self.where} refused the output recipe at {frequency:g} Hz")
        return Recipe(recipe_id, tuple(names), types)

    async def start(self) -> None:
        """Start the data stream."""
        payload = await self._request(rtde.start(), PackageType.CONTROL_PACKAGE_START)
        if not rtde.decode_accepted(payload):
            raise DeviceError(f"{self.where} refused to start the data stream")

    async def receive(self) -> list[bytes]:
        """Wait for data; return the payloads of every data package received so far (at least one)."""
        while True:
            payloads = [p for t, p in self._drain_queue() if t == PackageType.DATA_PACKAGE]
            if payloads:
                return payloads
            await self._fill()

    def _drain_queue(self) -> list[tuple[int, bytes]]:
        packages = []
        while self._queue:
            package_type, payload = self._queue.popleft()
            if package_type == PackageType.TEXT_MESSAGE:
                self._log_text(payload)
            elif package_type != PackageType.DATA_PACKAGE:
                raise ProtocolError(f"unexpected {PackageType(package_type).name} package in the data stream")
            else:
                packages.append((package_type, payload))
        return packages

    async def _request(self, request: bytes, answer: PackageType) -> bytes:
        self._send(request)
        try:
            return await bounded(self._expect(answer), self.timeout)
        except TimeoutError:
            raise Unavailable(f"{self.where} did not answer {answer.name} in {self.timeout} s") from None

    async def _expect(self, answer: PackageType) -> bytes:
        while True:
            while self._queue:
                package_type, payload = self._queue.popleft()
                if package_type == answer:
                    return payload
                if package_type == PackageType.TEXT_MESSAGE:
                    self._log_text(payload)
                elif package_type != PackageType.DATA_PACKAGE:  # data may still flow while pausing
                    raise ProtocolError(f"expected {answer.name}, got {PackageType(package_type).name}")
            await self._fill()

    async def _fill(self) -> None:
        if self._reader is None:
            raise Unavailable(f"{self.where} connection is closed")
        try:
            data = await self._reader.read(_READ_SIZE)
        except OSError as exc:
            raise Unavailable(f"{self.where} connection broke: {describe(exc)}") from exc
        if not data:
            if self._framer.pending:
                raise ProtocolError(
                    f"connection closed inside a package ({self._framer.pending} bytes truncated)"
                )
            raise Unavailable(f"{self.where} closed the connection")
        self._queue.extend(self._framer.feed(data))

    def _send(self, data: bytes) -> None:
        if self._writer is None:
            raise Unavailable(f"{self.where} connection is closed")
        self._writer.write(data)

    def _log_text(self, payload: bytes) -> None:
        message = rtde.decode_text_message(payload)
        self.text_messages += 1
        self.log.log(
            _LOG_LEVELS[message.level], "%s says (%s): %s", self.where, message.source, message.message
        )

    async def close(self) -> None:
        """Close the connection; idempotent."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        await close_writer(writer)
