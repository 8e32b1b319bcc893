"""Machine-state timelines for the Alarms & efficiency page: every device's `state/current` over time.

The bridge keeps times per state, not when each state began, so the console follows the state signals
itself, through the session's own client (the user's rights), from the first time the page asks. What it
serves covers at most the last `KEEP_SECONDS`, and never more than the console has seen: the answer says
from when (`since_ms`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from linebridge.client import AsyncClient, Batch, ClientError

log = logging.getLogger(__name__)

STATE_SIGNALS = "*/state/current"
SUFFIX = "/state/current"
KEEP_SECONDS = 3600.0
MAX_CHANGES = 5000  # per device: a flapping state cannot grow the console without bound
RETRY_SECONDS = 2.0


class StateTimeline:
    """The state changes of every device the session's user may read, kept for `KEEP_SECONDS`."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.since_ms = time.time() * 1e3
        self.changes: dict[str, deque[tuple[float, str]]] = {}
        self.error = ""  # why the timeline is not being followed (empty while it is)
        self.ready = asyncio.Event()  # set once the first read of the states has answered (or failed)

    def start(self) -> asyncio.Task[None]:
        """Start following the state signals (the caller ends the task with the session)."""
        return asyncio.create_task(self._follow(), name="console:state-timeline")

    def add(self, batch: Batch) -> None:
        """Record the state samples of a batch that differ from each device's last state."""
        for path, value, stamp in zip(
            batch.paths.tolist(), batch.values().tolist(), batch.timestamps.tolist(), strict=True
        ):
            if not path.endswith(SUFFIX):
                continue
            device = path[: -len(SUFFIX)]
            seen = self.changes.setdefault(device, deque(maxlen=MAX_CHANGES))
            if seen and seen[-1][1] == value:
                continue
            seen.append((stamp / 1e6, str(value)))

    def view(self, now_ms: float | None = None) -> dict[str, Any]:
        """The timelines as JSON: per device, [t_ms, state] changes from `since_ms` on (the state in force
        at `since_ms` first), with the window's ends."""
        now_ms = time.time() * 1e3 if now_ms is None else now_ms
        start = max(self.since_ms, now_ms - KEEP_SECONDS * 1e3)
        devices: dict[str, list[list[Any]]] = {}
        for device, seen in sorted(self.changes.items()):
            while len(seen) > 1 and seen[1][0] <= start:
                seen.popleft()  # the state in force at the window's start is the last change before it
            devices[device] = [[max(t, start), state] for t, state in seen]
        return {"since_ms": start, "now_ms": now_ms, "devices": devices, "error": self.error}

    async def _follow(self) -> None:
        while True:
            try:
                try:
                    self.add(await self.client.read([STATE_SIGNALS]))
                finally:
                    self.ready.set()
                subscription = self.client.subscribe([STATE_SIGNALS], on_change=True, history_seconds=0)
                try:
                    async for batch in subscription:
                        self.error = ""
                        self.add(batch)
                finally:
                    subscription.close()
            except ClientError as e:  # e.g. no device has analytics yet: try again, say why meanwhile
                self.error = f"{type(e).__name__}: {e}"
            await asyncio.sleep(RETRY_SECONDS)
