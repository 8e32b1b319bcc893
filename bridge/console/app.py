"""The console's ASGI app: static page, session and login, CSRF on every state-changing request."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from linebridge.client import ClientError
from linebridge.console import alarms, api, transport
from linebridge.console.config import ConsoleOptions
from linebridge.console.live import LiveSocket
from linebridge.console.sessions import COOKIE, Session, SessionStore
from linebridge.console.views import error_json

STATIC = Path(__file__).parent / "static"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
OPEN_PATHS = {"/api/session", "/api/login"}  # reachable before login
CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"


def same_origin(conn: HTTPConnection) -> bool:
    """Whether the request's Origin (when the browser sends one) is this console itself."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == conn.headers.get("host", "")


class SessionGuard:
    """Finds the session of each request (making one when there is none) and refuses: API calls of a
    logged-out session (401), state-changing requests without the session's CSRF token in the
    X-CSRF-Token header or from another origin (403), WebSockets from another origin."""

    def __init__(self, app: ASGIApp, store: SessionStore) -> None:
        self.app, self.store = app, store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Guard one HTTP request or WebSocket, then hand it on with its session in scope["state"]."""
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope)
        session = self.store.get(conn.cookies.get(COOKIE))
        path = scope["path"]
        refusal = self._refusal(conn, session, scope)
        if refusal is not None:
            if scope["type"] == "websocket":
                return await WebSocket(scope, receive, send).close(code=4403)
            return await refusal(scope, receive, send)
        if scope["type"] == "http" and (path.startswith("/api/") or path == "/"):
            scope.setdefault("state", {})["session"] = session or self.store.new()
            return await self.app(scope, receive, self._with_cookie(send, scope))
        scope.setdefault("state", {})["session"] = session  # static files need none; /ws was checked
        return await self.app(scope, receive, send)

    def _refusal(self, conn: HTTPConnection, session: Session | None, scope: Scope) -> Response | None:
        path = scope["path"]
        if not same_origin(conn):
            return JSONResponse({"error": "Forbidden", "message": "cross-origin request refused"}, 403)
        logged_in = session is not None and session.client is not None
        if (path.startswith("/api/") or path == "/ws") and path not in OPEN_PATHS and not logged_in:
            return JSONResponse({"error": "Unauthenticated", "message": "log in first"}, 401)
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            if session is None or not session.csrf_ok(conn.headers.get("x-csrf-token")):
                return JSONResponse({"error": "Forbidden", "message": "missing or wrong CSRF token"}, 403)
        return None

    def _with_cookie(self, send: Send, scope: Scope) -> Send:
        """Set the cookie of the request's session as it is when the response starts (login replaces it)."""
        secure = "; Secure" if self.store.options.https else ""

        async def sender(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "http.response.start":
                session = scope["state"]["session"]
                cookie = f"{COOKIE}={session.id}; Path=/; HttpOnly; SameSite=Strict{secure}"
                headers = message.setdefault("headers", [])
                headers.append((b"set-cookie", cookie.encode()))
                headers.append((b"content-security-policy", CSP.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
            await send(message)

        return sender


def _session_json(session: Session) -> dict[str, object]:
    return {
        "logged_in": session.client is not None,
        "csrf": session.csrf,
        "identity": session.identity,
        "role": session.role,
    }


def build_app(options: ConsoleOptions) -> Starlette:
    """The console for one bridge."""
    store = SessionStore(options)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def session_info(request: Request) -> Response:
        return JSONResponse(_session_json(request.state.session))

    async def login(request: Request) -> Response:
        old: Session = request.state.session
        body = await request.json()
        try:
            new = await store.login(old, str(body.get("token", "")).strip())
        except ClientError as exc:
            return JSONResponse(error_json(exc), status_code=api.STATUS.get(exc.code, 502))  # type: ignore[arg-type]
        request.state.session = new
        return JSONResponse(_session_json(new))

    async def logout(request: Request) -> Response:
        old: Session = request.state.session
        await store.drop(old)
        new = store.new()
        request.state.session = new
        return JSONResponse(_session_json(new))

    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        await LiveSocket(websocket, websocket.state.session, options.frame_hz).run()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await store.close()

    routes = [
        Route("/", page),
        Route("/api/session", session_info),
        Route("/api/login", login, methods=["POST"]),
        Route("/api/logout", logout, methods=["POST"]),
        *api.routes(),
        *alarms.routes(),
        *transport.routes(),
        WebSocketRoute("/ws", live),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SessionGuard, store=store)], lifespan=lifespan)
    app.state.store = store
    return app
