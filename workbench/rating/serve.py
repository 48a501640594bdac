"""Blind rating in a browser: the Rate screen served by textual-serve, behind per-rater links.

Each browser connection runs its own ``python -m screens.rate_app`` (textual-serve's AppService
over a websocket, its xterm.js page on the browser side). Every request is checked here first:

- ``GET /rate/{token}``: the page, only for a valid token; anything else is a plain 403 page;
- ``GET /ws/{token}``: the websocket that starts the app, refused with 403 *before* any process
  starts when the token is wrong or the page came from another origin; the app re-checks the
  token (it reaches the app through its environment, never its command line);
- ``/static/``: textual-serve's JavaScript, CSS and fonts (no rating content).

Tokens never reach a log (no access log is kept) and pages are sent with ``no-referrer``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import shlex
import socket
import sys
from html import escape
from pathlib import Path
from typing import Callable

import textual_serve
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

from ..store import Store
from .tokens import Grant, resolve_token

TOKEN_ENV = "WORKBENCH_RATING_TOKEN"
MAX_CONNECTIONS_PER_LINK = 3
MAX_CONNECTIONS = 32
STATIC = Path(textual_serve.__file__).parent / "static"  # xterm.js and textual-serve's client
log = logging.getLogger("workbench.serve_rating")

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Blind rating</title>
<link rel="stylesheet" href="/static/css/xterm.css">
<script src="/static/js/textual.js"></script>
<style>
body {{ background: #0c181f; margin: 0; }}
.ended {{ display: none; position: absolute; inset: 0; z-index: 10; align-items: center;
          justify-content: center; color: #eee; font: 16px monospace; background: #0c181f; }}
body.-closed .ended {{ display: flex; }}
</style>
</head>
<body>
<div class="ended"><p>Session ended. Reload this page to continue where you stopped.</p></div>
<div id="terminal" class="textual-terminal" data-session-websocket-url="{ws_url}"
     data-font-size="{font_size}"></div>
</body>
</html>
"""
REFUSED = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Blind rating</title></head>
<body><p>{message}</p></body></html>
"""
INVALID_LINK = ("This rating link is not valid (or it was withdrawn). "
                "Ask the person who runs the study for a new one.")
HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
           "Cache-Control": "no-store", "X-Frame-Options": "DENY",
           "Content-Security-Policy": "frame-ancestors 'none'"}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost (the only binds that need no --allow-remote)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def rate_app_command(workspace: Path) -> str:
    """The shell command run for each browser connection (``exec``: no shell stays behind)."""
    return (f"exec {shlex.quote(sys.executable)} -m screens.rate_app "
            f"--workspace {shlex.quote(str(workspace))}")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); OSError with the reason if not."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    return sock


class _RateAppService(AppService):
    """textual-serve's AppService, with the rater's token handed to the app in its environment."""

    def __init__(self, command: str, token: str, **kwargs) -> None:
        super().__init__(command, **kwargs)
        self._token = token

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width, height)
        environment[TOKEN_ENV] = self._token
        environment.pop("WORKBENCH_HOME", None)
        return environment


class RatingServer:
    """The aiohttp application: token-checked page and websocket, textual-serve's statics."""

    def __init__(self, db_path: Path, workspace: Path, *, command: str | None = None) -> None:
        self.db_path = Path(db_path)
        self.command = command or rate_app_command(workspace)
        self.download_manager = DownloadManager()
        self.connections: dict[str, int] = {}

    def _grant(self, token: str) -> Grant | None:
        with Store(self.db_path) as store:
            return resolve_token(store, token, touch=True)

    async def grant(self, token: str) -> Grant | None:
        return await asyncio.to_thread(self._grant, token)

    @staticmethod
    def refused(message: str, status: int = 403) -> web.Response:
        return web.Response(text=REFUSED.format(message=escape(message)), status=status,
                            content_type="text/html", headers=HEADERS)

    async def index(self, request: web.Request) -> web.Response:
        return self.refused("Open the personal rating link you were given.")

    async def page(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if await self.grant(token) is None:
            return self.refused(INVALID_LINK)
        scheme = "wss" if request.secure else "ws"
        font_size = request.query.get("fontsize", "16")
        ws_url = f"{scheme}://{request.host}/ws/{token}"
        html = PAGE.format(ws_url=escape(ws_url, quote=True),
                           font_size=int(font_size) if font_size.isdigit() else 16)
        return web.Response(text=html, content_type="text/html", headers=HEADERS)

    def same_origin(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is None or origin.split("://", 1)[-1] == request.host

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if not self.same_origin(request) or await self.grant(token) is None:
            return self.refused(INVALID_LINK)
        if (self.connections.get(token, 0) >= MAX_CONNECTIONS_PER_LINK
                or sum(self.connections.values()) >= MAX_CONNECTIONS):
            return self.refused("Too many open pages for this link: close one and reload.", 429)
        self.connections[token] = self.connections.get(token, 0) + 1
        try:
            return await self._run_app(request, token)
        finally:
            self.connections[token] -= 1

    async def _run_app(self, request: web.Request, token: str) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15)
        width = _to_int(request.query.get("width"), 80)
        height = _to_int(request.query.get("height"), 24)
        await websocket.prepare(request)
        service = _RateAppService(self.command, token, write_bytes=websocket.send_bytes,
                                  write_str=websocket.send_str, close=websocket.close,
                                  download_manager=self.download_manager)
        try:
            await service.start(width, height)
            async for message in websocket:
                if message.type != WSMsgType.TEXT:
                    continue
                envelope = message.json()
                kind, data = (envelope + [None])[:2] if isinstance(envelope, list) else (None, None)
                if kind == "stdin" and isinstance(data, str):
                    await service.send_bytes(data.encode("utf-8"))
                elif kind == "resize" and isinstance(data, dict):
                    await service.set_terminal_size(_to_int(data.get("width"), 80),
                                                    _to_int(data.get("height"), 24))
                elif kind == "ping":
                    await websocket.send_json(["pong", data])
                elif kind == "blur":
                    await service.blur()
                elif kind == "focus":
                    await service.focus()
        except (asyncio.CancelledError, ConnectionResetError):
            pass
        except Exception:  # one broken connection must not stop the server
            log.exception("rating connection failed")
        finally:
            await service.stop()
            await websocket.close()
        return websocket

    def application(self) -> web.Application:
        app = web.Application()
        app.add_routes([
            web.get("/", self.index),
            web.get("/rate/{token}", self.page),
            web.get("/ws/{token}", self.websocket),
            web.static("/static", STATIC),
        ])
        return app


def _to_int(value, default: int) -> int:
    try:
        return max(1, min(int(value), 1000))
    except (TypeError, ValueError):
        return default


def serve(db_path: Path, workspace: Path, sock: socket.socket, *,
          on_start: Callable[[], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM on an already bound ``sock`` (see ``bind_socket``)."""
    server = RatingServer(db_path, workspace)

    async def started(_app: web.Application) -> None:
        if on_start is not None:
            on_start()

    app = server.application()
    app.on_startup.append(started)
    web.run_app(app, sock=sock, access_log=None, print=None, handle_signals=True,
                shutdown_timeout=5)
