"""Live data to a page over one WebSocket: plot samples in one binary message per frame, latest values of
a signal search, device events and command events.

A plot message is `u32 header length | header JSON | padding to 8 | float64 t_ms[n] | float64 v[n] |
int32 slot[n]`: the samples of every pinned signal since the last frame, in columns (never a message per
sample). `slot` indexes the header's `paths`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import Awaitable
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from linebridge.client import Batch, ClientError, Quality, Subscription, ValueType
from linebridge.console.sessions import Session
from linebridge.console.views import device_json, error_json

NUMERIC = (ValueType.DOUBLE, ValueType.INT, ValueType.BOOL)
MAX_PINS = 32
TABLE_INTERVAL = 0.25  # seconds between latest-value updates of the Signals table
ALARM_NOTICE_SECONDS = 0.5  # at most two "alarms changed" notices a second


def numeric_columns(batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(catalog index, timestamp ns, value as float64) of the batch's numeric samples."""
    parts = []
    for value_type in NUMERIC:
        mask = batch.of_type(value_type)
        if mask.any():
            parts.append(
                (batch.index[mask], batch.timestamps[mask], batch.column(value_type).astype(np.float64))
            )
    if not parts:
        return np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.float64)
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))  # type: ignore[return-value]


def plot_message(paths: list[str], slots: np.ndarray, stamps_ns: np.ndarray, values: np.ndarray) -> bytes:
    """One binary plot frame (layout in the module docstring)."""
    header = json.dumps(
        {"t": "plot", "n": int(slots.size), "paths": paths, "sent_ms": time.time() * 1e3}
    ).encode()
    pad = (-(4 + len(header))) % 8
    return b"".join(
        (
            struct.pack("<I", len(header)),
            header,
            b" " * pad,
            (stamps_ns / 1e6).astype("<f8").tobytes(),
            values.astype("<f8").tobytes(),
            slots.astype("<i4").tobytes(),
        )
    )


class LiveSocket:
    """One page's WebSocket: owns its subscriptions and tasks, all cancelled when the page goes."""

    def __init__(self, websocket: WebSocket, session: Session, frame_hz: float) -> None:
        assert session.client is not None
        self.ws, self.session, self.client = websocket, session, session.client
        self.period = 1.0 / frame_hz
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.pins: list[str] = []
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._ready = asyncio.Event()
        self._slot_maps: dict[int, np.ndarray] = {}
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        """Serve the page until it closes."""
        self.session.sockets.add(self)
        self._start("devices", self._devices())
        self._start("flush", self._flush())
        try:
            while True:
                self._command(json.loads(await self.ws.receive_text()))
        except (WebSocketDisconnect, RuntimeError, json.JSONDecodeError):
            pass
        finally:
            self.session.sockets.discard(self)
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def send_json(self, message: dict[str, Any]) -> None:
        """Send one text message (serialised with the other senders)."""
        async with self._send_lock:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.ws.send_text(json.dumps(message))

    def _start(self, name: str, coro: Awaitable[None]) -> None:
        old = self.tasks.pop(name, None)
        if old is not None:
            old.cancel()
        self.tasks[name] = asyncio.create_task(self._guard(name, coro), name=f"console-{name}")

    async def _guard(self, name: str, coro: Awaitable[None]) -> None:
        try:
            await coro
        except ClientError as exc:
            await self.send_json({"t": "error", "what": name, **error_json(exc)})

    def _command(self, message: dict[str, Any]) -> None:
        if "pin" in message:
            self.pins = [str(p) for p in message["pin"]][:MAX_PINS]
            self._pending.clear()
            self._slot_maps = {}
            if self.pins:
                # batches the size of a frame: the page gets one message per frame anyway
                plot = self.client.subscribe(self.pins, history_seconds=0, latency=self.period)
                self._start("plot", self._plot(plot))
            elif "plot" in self.tasks:
                self.tasks.pop("plot").cancel()
        if "alarms" in message:  # the Alarms page is open: tell it when any alarm changes
            if message["alarms"]:
                self._start("alarms", self._alarms())
            elif "alarms" in self.tasks:
                self.tasks.pop("alarms").cancel()
        if "watch" in message:
            glob = str(message["watch"] or "*")
            self._start(
                "table",
                self._table(self.client.subscribe([glob], interval=TABLE_INTERVAL, history_seconds=0)),
            )

    async def _alarms(self) -> None:
        """One `alarms` notice per change of any alarm (WatchAlarms), at most every ALARM_NOTICE_SECONDS:
        the page then reads the list again (the console never keeps a copy that could go stale)."""
        last = 0.0
        async for _ in self.client.watch_alarms("*"):
            wait = last + ALARM_NOTICE_SECONDS - time.monotonic()
            if wait > 0:
                await asyncio.sleep(
                    wait
                )  # changes in the meantime queue in the stream: one notice covers them
            last = time.monotonic()
            await self.send_json({"t": "alarms"})

    async def _plot(self, subscription: Subscription) -> None:
        try:
            async for batch in subscription:
                if len(batch):
                    self._pending.append(numeric_columns(batch) + (self._slots(batch),))  # type: ignore[arg-type]
                    self._ready.set()
        finally:
            subscription.close()

    def _slots(self, batch: Batch) -> np.ndarray:
        """Catalog index -> pin slot for this batch's catalog version (cached per version)."""
        view = batch.catalog
        table = self._slot_maps.get(id(view))
        if table is None:
            where = {p: i for i, p in enumerate(self.pins)}
            table = np.array([where.get(p, -1) for p in view.paths.tolist()], dtype=np.int32)
            self._slot_maps = {id(view): table}
        return table

    async def _flush(self) -> None:
        """At most one plot message per frame, with everything that arrived since the previous one."""
        last = 0.0
        while True:
            await self._ready.wait()
            wait = last + self.period - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._ready.clear()
            pending, self._pending = self._pending, []
            if not pending:
                continue
            slots = np.concatenate([p[3][p[0]] for p in pending])
            stamps = np.concatenate([p[1] for p in pending])
            values = np.concatenate([p[2] for p in pending])
            keep = slots >= 0
            data = plot_message(self.pins, slots[keep], stamps[keep], values[keep])
            last = time.monotonic()
            async with self._send_lock:
                await self.ws.send_bytes(data)

    async def _table(self, subscription: Subscription) -> None:
        try:
            async for batch in subscription:
                rows = [
                    {
                        "path": s.path,
                        "value": s.value if isinstance(s.value, int | float | bool) else str(s.value),
                        "quality": Quality(s.quality).name
                        if s.quality in Quality._value2member_map_
                        else str(s.quality),
                        "ts_ms": s.timestamp_ns / 1e6,
                    }
                    for s in batch.latest().values()
                ]
                units = {e.path: e.unit for e in batch.catalog.entries}
                for row in rows:
                    row["unit"] = units.get(row["path"], "")
                await self.send_json({"t": "values", "rows": rows})
        finally:
            subscription.close()

    async def _devices(self) -> None:
        async for event in self.client.watch_devices():
            await self.send_json(
                {"t": "device", "type": event.type.name, "device": device_json(event.device)}
            )
