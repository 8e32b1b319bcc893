"""Console sessions: each holds its user's own client of the bridge (their token) and a CSRF token."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from linebridge.client import AsyncClient
from linebridge.console.config import ConsoleOptions

COOKIE = "lb_session"
IDLE_SECONDS = 8 * 3600
MAX_LOGGED_OUT = 1000  # sessions without a login kept at once (each visit without a cookie makes one)


@dataclass(eq=False)
class Session:
    """One browser session. `client` is None until the user logs in; it carries only the user's token."""

    id: str
    csrf: str
    client: AsyncClient | None = None
    identity: str = ""  # who the bridge takes the user to be (GetInfo's caller), for the page
    role: str = ""  # their role at the bridge: VIEWER, OPERATOR or ADMIN (the page offers what it allows)
    seen: float = field(default_factory=time.monotonic)
    sockets: set[Any] = field(default_factory=set)  # open WebSockets (command events go to them)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)  # followers of commands sent from here
    timeline: Any = None  # the machine-state timeline, followed from the first time the page asks

    def csrf_ok(self, offered: str | None) -> bool:
        """Whether a request carries this session's CSRF token (constant-time compare)."""
        return bool(offered) and hmac.compare_digest(offered.encode(), self.csrf.encode())

    async def close(self) -> None:
        """Cancel the session's tasks and close its channel to the bridge."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.client is not None:
            await self.client.close()
            self.client = None


class SessionStore:
    """Sessions by id; ids and CSRF tokens are 256-bit random strings."""

    def __init__(self, options: ConsoleOptions) -> None:
        self.options = options
        self._sessions: dict[str, Session] = {}

    def get(self, session_id: str | None) -> Session | None:
        """The live session of that id, or None."""
        session = self._sessions.get(session_id or "")
        if session is not None:
            if time.monotonic() - session.seen > IDLE_SECONDS:
                return None
            session.seen = time.monotonic()
        return session

    def new(self) -> Session:
        """A fresh, logged-out session (the oldest logged-out ones are forgotten beyond MAX_LOGGED_OUT)."""
        waiting = [s for s in self._sessions.values() if s.client is None]
        for old in sorted(waiting, key=lambda s: s.seen)[: max(0, len(waiting) - MAX_LOGGED_OUT + 1)]:
            del self._sessions[old.id]
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        self._sessions[session.id] = session
        return session

    def client_for(self, token: str) -> AsyncClient:
        """A client of the bridge that carries `token` (or, on a loopback console, the console's --token
        when the user gave none; without either, no token: the bridge's local caller on loopback)."""
        o = self.options
        chosen = token or (o.token if o.loopback else None) or None
        return AsyncClient(o.target, ca=o.ca, cert=o.cert, key=o.key, token=chosen, reconnect_seconds=5.0)

    async def login(self, old: Session, token: str) -> Session:
        """Replace `old` by a logged-in session with a new id (no session fixation)."""
        client = self.client_for(token)
        try:
            await client.devices(signals=False)  # proves the token: UNAUTHENTICATED/PERMISSION_DENIED raise
            info = await client.info()
        except BaseException:
            await client.close()
            raise
        await self.drop(old)
        session = self.new()
        session.client = client
        session.identity = info.caller or ("token" if token else "no token")
        session.role = info.role
        return session

    async def drop(self, session: Session) -> None:
        """Forget a session and close what it holds."""
        self._sessions.pop(session.id, None)
        await session.close()

    async def close(self) -> None:
        """Close every session."""
        for session in list(self._sessions.values()):
            await self.drop(session)
