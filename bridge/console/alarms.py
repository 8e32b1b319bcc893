"""The console's Alarms & efficiency routes: the SDK's alarm and efficiency calls with the session's client."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from linebridge.console.api import bridge_call
from linebridge.console.sessions import Session
from linebridge.console.timeline import StateTimeline
from linebridge.console.views import message_json


async def alarms(request: Request, session: Session) -> Any:
    """Alarms of interest (or every alarm with ?all=1), highest severity first."""
    assert session.client is not None
    every = request.query_params.get("all") == "1"
    return {"alarms": [message_json(a) for a in await session.client.alarms("*", include_inactive=every)]}


async def acknowledge(request: Request, session: Session) -> Any:
    """Acknowledge an alarm (operator; audited under the user)."""
    assert session.client is not None
    body = await request.json()
    alarm = await session.client.acknowledge(request.path_params["alarm"], str(body.get("comment", "")))
    return {"alarm": message_json(alarm)}


async def shelve(request: Request, session: Session) -> Any:
    """Shelve an alarm for `minutes` with a reason (operator)."""
    assert session.client is not None
    body = await request.json()
    minutes = float(body.get("minutes", 0) or 0)
    alarm = await session.client.shelve(
        request.path_params["alarm"], minutes * 60, str(body.get("reason", ""))
    )
    return {"alarm": message_json(alarm)}


async def unshelve(request: Request, session: Session) -> Any:
    """Return a shelved alarm to the list (operator)."""
    assert session.client is not None
    return {"alarm": message_json(await session.client.unshelve(request.path_params["alarm"]))}


async def efficiency(request: Request, session: Session) -> Any:
    """OEE per device for ?window=shift|hour|start, with the time per state and the loss per alarm."""
    assert session.client is not None
    window = request.query_params.get("window", "shift")
    return {"devices": [message_json(e) for e in await session.client.efficiency("*", window)]}


async def timeline(request: Request, session: Session) -> Any:
    """Each device's machine state over time (the last hour at most, since this session first asked)."""
    assert session.client is not None
    if session.timeline is None:
        session.timeline = StateTimeline(session.client)
        session.tasks.add(session.timeline.start())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(session.timeline.ready.wait(), 3.0)
    return session.timeline.view()


def routes() -> list[Route]:
    """Routes under /api/alarms and /api/efficiency."""
    return [
        Route("/api/alarms", bridge_call(alarms)),
        Route("/api/alarms/{alarm:path}/ack", bridge_call(acknowledge), methods=["POST"]),
        Route("/api/alarms/{alarm:path}/shelve", bridge_call(shelve), methods=["POST"]),
        Route("/api/alarms/{alarm:path}/unshelve", bridge_call(unshelve), methods=["POST"]),
        Route("/api/efficiency", bridge_call(efficiency)),
        Route("/api/efficiency/timeline", bridge_call(timeline)),
    ]
