"""The console's Transport routes: AGVs (VDA 5050 transporters) and where a load is, through the SDK."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from linebridge.console.api import bridge_call
from linebridge.console.sessions import Session
from linebridge.console.views import message_json


async def transporters(request: Request, session: Session) -> Any:
    """Every transporter with its map position, loads and order progress."""
    assert session.client is not None
    return {"transporters": [message_json(t) for t in await session.client.transporters()]}


async def zones(request: Request, session: Session) -> Any:
    """The configured zones with their polygons, for drawing them on the maps."""
    assert session.client is not None
    return {"zones": [message_json(z) for z in await session.client.zones()]}


async def locate(request: Request, session: Session) -> Any:
    """Where load `id` is (NOT_FOUND when no transporter reported it)."""
    assert session.client is not None
    return {"load": message_json(await session.client.locate_load(request.path_params["load"]))}


def routes() -> list[Route]:
    """Routes under /api/transport."""
    return [
        Route("/api/transport/transporters", bridge_call(transporters)),
        Route("/api/transport/zones", bridge_call(zones)),
        Route("/api/transport/loads/{load:path}", bridge_call(locate)),
    ]
